#include "backends/cpu/dnnl_context.hpp"

#include <cstdlib>
#include <memory>

#include "kpt/error.hpp"

namespace kpt::cpu::dnnl_util {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

namespace {
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
struct ScratchBuffer {
  std::unique_ptr<void, FreeDeleter> data;
  size_t bytes = 0;
};
}  // namespace

void* scratch(Scratch slot, size_t bytes) {
  thread_local ScratchBuffer buffers[static_cast<int>(Scratch::Count)];
  ScratchBuffer& b = buffers[static_cast<int>(slot)];
  if (bytes > b.bytes) {
    // Grow by half again so a slowly growing sequence length does not reallocate every run.
    const size_t want = ((bytes + bytes / 2) + 63) / 64 * 64;
    b.data.reset();
    void* p = std::aligned_alloc(64, want);
    if (!p) fail("out of memory allocating " + std::to_string(want) + " bytes of kernel scratch");
    b.data.reset(p);
    b.bytes = want;
  }
  return b.data.get();
}

dnnl::memory::dims to_dims(const Dims& d) {
  return dnnl::memory::dims(d.begin(), d.end());
}

std::optional<Eltwise> activation(const std::string& name) {
  using A = dnnl::algorithm;
  if (name.empty()) return std::nullopt;
  if (name == "Relu") return Eltwise{A::eltwise_relu, 0.f, 0.f};
  if (name == "Gelu") return Eltwise{A::eltwise_gelu_erf, 0.f, 0.f};
  if (name == "GeluTanh") return Eltwise{A::eltwise_gelu_tanh, 0.f, 0.f};
  if (name == "Silu") return Eltwise{A::eltwise_swish, 1.f, 0.f};
  if (name == "Sigmoid") return Eltwise{A::eltwise_logistic, 0.f, 0.f};
  if (name == "Tanh") return Eltwise{A::eltwise_tanh, 0.f, 0.f};
  fail("unknown activation '" + name +
       "'; expected one of \"\", Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh");
}

bool known_activation(const std::string& name) {
  return name.empty() || name == "Relu" || name == "Gelu" || name == "GeluTanh" || name == "Silu" ||
         name == "Sigmoid" || name == "Tanh";
}

}  // namespace kpt::cpu::dnnl_util
