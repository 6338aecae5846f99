#include "backends/cuda/stream.hpp"

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"

namespace kpt::cuda {

Stream::Stream() {
  require_device();
  KPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void Stream::synchronize() const {
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

Event::Event(bool timing) {
  require_device();
  KPT_CUDA_CHECK(
      cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

Event::~Event() {
  if (event_) cudaEventDestroy(event_);
}

void Event::record(cudaStream_t s) const {
  KPT_CUDA_CHECK(cudaEventRecord(event_, s));
}

void Event::synchronize() const {
  KPT_CUDA_CHECK(cudaEventSynchronize(event_));
}

float Event::elapsed_since(const Event& start) const {
  float ms = 0;
  KPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace kpt::cuda
