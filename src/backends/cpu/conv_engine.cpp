#include "backends/cpu/conv_engine.hpp"

#include <cstdlib>
#include <memory>
#include <new>

namespace kpt::cpu {

dnnl::engine& conv_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& conv_stream() {
  thread_local dnnl::stream stream(conv_engine());
  return stream;
}

namespace {
struct Buffer {
  std::unique_ptr<void, decltype(&std::free)> data{nullptr, &std::free};
  size_t bytes = 0;
};
}  // namespace

void* thread_scratch(int slot, size_t bytes) {
  thread_local Buffer buffers[3];
  Buffer& b = buffers[slot];
  if (b.bytes < bytes) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, rounded);
    if (p == nullptr) throw std::bad_alloc();
    b.data.reset(p);
    b.bytes = rounded;
  }
  return b.data.get();
}

}  // namespace kpt::cpu
