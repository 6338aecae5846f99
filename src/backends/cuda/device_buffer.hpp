#pragma once
// Device memory holding one tensor's elements: the CUDA backend's own buffer type, not a
// second general tensor type. It converts to and from kpt::Tensor only by explicit copies
// (upload/download), so every host<->device transfer is visible where it happens. A buffer
// either owns pool memory (freed stream-ordered on the stream it was made on) or wraps memory
// the caller owns (I/O binding: inputs and outputs already on the GPU are not copied). An owning
// buffer must not outlive the stream it was allocated on: its memory is freed on that stream.
#include <cuda_runtime.h>

#include <memory>

#include "backends/cuda/memory_pool.hpp"
#include "kpt/tensor.hpp"

namespace kpt::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Uninitialized device memory for `dims` elements of `dtype`, from `pool`, usable on `stream`.
  static DeviceBuffer allocate(DType dtype, Dims dims, DevicePool& pool, cudaStream_t stream);
  // Device memory the caller owns and keeps alive (no copy, never freed here); `keep_alive`,
  // when given, is held as long as the buffer (memory carved out of a larger block).
  static DeviceBuffer wrap(DType dtype, Dims dims, void* device_data,
                           std::shared_ptr<void> keep_alive = {});
  // The same memory seen with other dims of the same element count (Reshape and friends).
  DeviceBuffer view(Dims dims) const;
  // Elements [offset, offset + count(dims)) of this buffer as one of `dims`, sharing its memory
  // (and keeping all of it alive): one output of a kernel that writes several back to back.
  DeviceBuffer part(int64_t offset, Dims dims) const;
  // Copies `t` to new device memory through `staging` (pinned), asynchronously on `stream`.
  static DeviceBuffer upload(const Tensor& t, DevicePool& pool, PinnedBuffer& staging,
                             cudaStream_t stream);

  // Copies the elements back into a new host tensor; waits for `stream`.
  Tensor download(PinnedBuffer& staging, cudaStream_t stream) const;
  // Copies host elements into this buffer (dtype and element count must match).
  void copy_from(const Tensor& t, PinnedBuffer& staging, cudaStream_t stream);

  bool defined() const { return data_ != nullptr || numel_ == 0; }
  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  void* data() const { return data_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  std::string describe() const;  // "cuda:f16[2,3]"

 private:
  DType dtype_ = DType::Undefined;
  Dims dims_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;  // frees pool memory when the last copy goes
};

}  // namespace kpt::cuda
