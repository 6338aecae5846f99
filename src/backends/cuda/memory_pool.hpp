#pragma once
// Device memory for the CUDA backend: a stream-ordered pool (CUDA's memory pools behind
// cudaMallocFromPoolAsync), so that allocations and frees are ordered with the kernels on a
// stream and reuse memory without synchronizing; the pool keeps what it has freed (release
// threshold: unlimited) so steady-state inference allocates nothing from the driver.
// Pinned host buffers for staging copies: page-locked memory is what lets cudaMemcpyAsync run
// asynchronously and at full PCIe/NVLink-C2C rate.
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>

namespace kpt::cuda {

class DevicePool {
 public:
  explicit DevicePool(int device = -1);  // -1: the current device
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // Memory usable by work on `stream` once the work queued before it there has run.
  void* allocate(size_t bytes, cudaStream_t stream);
  // Returns memory once the work queued on `stream` so far is done with it.
  void free(void* p, cudaStream_t stream);

  size_t used_bytes() const;       // handed out and not yet freed
  size_t peak_used_bytes() const;  // the most handed out at once
  size_t reserved_bytes() const;   // taken from the driver

  int device() const { return device_; }

  // One pool per device for the process.
  static DevicePool& for_current_device();

 private:
  int device_ = 0;
  cudaMemPool_t pool_ = nullptr;
};

// A page-locked host buffer that grows on demand. Before it is reused (or grown) it waits for
// the copies that read or wrote it: their completion is recorded with mark_in_use().
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // At least `bytes` of pinned memory, no copy into or out of it still in flight.
  void* acquire(size_t bytes);
  // Copies queued on `stream` now use the buffer; the next acquire waits for them.
  void mark_in_use(cudaStream_t stream);
  size_t capacity() const { return capacity_; }

 private:
  void wait_idle();
  void* data_ = nullptr;
  size_t capacity_ = 0;
  cudaEvent_t done_ = nullptr;
  bool pending_ = false;
};

}  // namespace kpt::cuda
