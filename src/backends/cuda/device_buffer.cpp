#include "backends/cuda/device_buffer.hpp"

#include <cstring>

#include "backends/cuda/cuda_check.hpp"

namespace kpt::cuda {

namespace {

void check_copyable(DType dtype) {
  if (dtype == DType::String || dtype == DType::Undefined)
    throw Error(std::string("a ") + std::string(dtype_name(dtype)) +
                " tensor cannot live in CUDA device memory");
}

}  // namespace

DeviceBuffer DeviceBuffer::allocate(DType dtype, Dims dims, DevicePool& pool, cudaStream_t stream) {
  check_copyable(dtype);
  DeviceBuffer b;
  b.dtype_ = dtype;
  b.numel_ = element_count(dims);
  b.dims_ = std::move(dims);
  const size_t bytes = b.nbytes();
  if (bytes > 0) {
    void* p = pool.allocate(bytes, stream);
    b.data_ = p;
    DevicePool* owner_pool = &pool;
    // Freed on the stream it was allocated for: later work queued there may still read it.
    b.owner_ = std::shared_ptr<void>(p, [owner_pool, stream](void* q) {
      try {
        owner_pool->free(q, stream);
      } catch (...) {
        // A destructor must not throw; a failed free leaks one block of the pool.
      }
    });
  }
  return b;
}

DeviceBuffer DeviceBuffer::wrap(DType dtype, Dims dims, void* device_data,
                                std::shared_ptr<void> keep_alive) {
  check_copyable(dtype);
  DeviceBuffer b;
  b.dtype_ = dtype;
  b.numel_ = element_count(dims);
  b.dims_ = std::move(dims);
  b.data_ = device_data;
  b.owner_ = std::move(keep_alive);
  return b;
}

DeviceBuffer DeviceBuffer::view(Dims dims) const {
  if (element_count(dims) != numel_)
    throw Error("cannot view " + describe() + " as " + dims_to_string(dims) +
                ": element counts differ");
  DeviceBuffer b = *this;
  b.dims_ = std::move(dims);
  return b;
}

DeviceBuffer DeviceBuffer::part(int64_t offset, Dims dims) const {
  const int64_t count = element_count(dims);
  if (offset < 0 || offset + count > numel_)
    throw Error("cannot take elements [" + std::to_string(offset) + ", " +
                std::to_string(offset + count) + ") of " + describe());
  DeviceBuffer b = *this;
  b.dims_ = std::move(dims);
  b.numel_ = count;
  b.data_ = static_cast<char*>(data_) + static_cast<size_t>(offset) * dtype_size(dtype_);
  return b;
}

DeviceBuffer DeviceBuffer::upload(const Tensor& t, DevicePool& pool, PinnedBuffer& staging,
                                  cudaStream_t stream) {
  DeviceBuffer b = allocate(t.dtype(), t.dims(), pool, stream);
  b.copy_from(t, staging, stream);
  return b;
}

void DeviceBuffer::copy_from(const Tensor& t, PinnedBuffer& staging, cudaStream_t stream) {
  if (t.dtype() != dtype_ || t.numel() != numel_)
    throw Error("cannot copy " + t.describe() + " into " + describe());
  if (nbytes() == 0) return;
  void* host = staging.acquire(nbytes());
  std::memcpy(host, t.raw(), nbytes());
  KPT_CUDA_CHECK(cudaMemcpyAsync(data_, host, nbytes(), cudaMemcpyHostToDevice, stream));
  staging.mark_in_use(stream);
}

Tensor DeviceBuffer::download(PinnedBuffer& staging, cudaStream_t stream) const {
  Tensor t = Tensor::uninitialized(dtype_, dims_);
  if (nbytes() == 0) return t;
  void* host = staging.acquire(nbytes());
  KPT_CUDA_CHECK(cudaMemcpyAsync(host, data_, nbytes(), cudaMemcpyDeviceToHost, stream));
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::memcpy(t.raw(), host, nbytes());
  return t;
}

std::string DeviceBuffer::describe() const {
  std::string s = "cuda:";
  s += dtype_name(dtype_);
  s += dims_to_string(dims_);
  return s;
}

}  // namespace kpt::cuda
