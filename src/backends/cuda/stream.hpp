#pragma once
// An owned non-blocking CUDA stream and an owned event. Non-blocking so that work on it never
// waits for the legacy default stream that libraries may use.
#include <cuda_runtime.h>

namespace kpt::cuda {

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t s) const;
  void synchronize() const;
  // Milliseconds from `start` to this event (both recorded, this one completed).
  float elapsed_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace kpt::cuda
