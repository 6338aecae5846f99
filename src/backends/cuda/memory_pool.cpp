#include "backends/cuda/memory_pool.hpp"

#include <cstdint>
#include <map>
#include <memory>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"

namespace kpt::cuda {

DevicePool::DevicePool(int device) {
  require_device();
  if (device < 0) KPT_CUDA_CHECK(cudaGetDevice(&device));
  device_ = device;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  KPT_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
  // Keep freed memory in the pool instead of returning it at each synchronization.
  uint64_t threshold = UINT64_MAX;
  KPT_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
}

DevicePool::~DevicePool() {
  if (pool_) cudaMemPoolDestroy(pool_);
}

void* DevicePool::allocate(size_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  const cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool_, stream);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error("CUDA device memory: cannot allocate " + std::to_string(bytes) + " bytes (" +
                cudaGetErrorString(err) + "); pool holds " + std::to_string(reserved_bytes()) +
                " bytes, " + std::to_string(used_bytes()) + " in use");
  }
  return p;
}

void DevicePool::free(void* p, cudaStream_t stream) {
  if (p) KPT_CUDA_CHECK(cudaFreeAsync(p, stream));
}

namespace {
size_t pool_attr(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  uint64_t v = 0;
  KPT_CUDA_CHECK(cudaMemPoolGetAttribute(pool, attr, &v));
  return static_cast<size_t>(v);
}
}  // namespace

size_t DevicePool::used_bytes() const {
  return pool_attr(pool_, cudaMemPoolAttrUsedMemCurrent);
}
size_t DevicePool::peak_used_bytes() const {
  return pool_attr(pool_, cudaMemPoolAttrUsedMemHigh);
}
size_t DevicePool::reserved_bytes() const {
  return pool_attr(pool_, cudaMemPoolAttrReservedMemCurrent);
}

DevicePool& DevicePool::for_current_device() {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<DevicePool>> pools;
  int device = 0;
  require_device();
  KPT_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mu);
  auto& p = pools[device];
  if (!p) p = std::make_unique<DevicePool>(device);
  return *p;
}

PinnedBuffer::~PinnedBuffer() {
  if (pending_) cudaEventSynchronize(done_);
  if (done_) cudaEventDestroy(done_);
  if (data_) cudaFreeHost(data_);
}

void PinnedBuffer::wait_idle() {
  if (pending_) {
    KPT_CUDA_CHECK(cudaEventSynchronize(done_));
    pending_ = false;
  }
}

void* PinnedBuffer::acquire(size_t bytes) {
  wait_idle();
  if (bytes > capacity_) {
    if (data_) KPT_CUDA_CHECK(cudaFreeHost(data_));
    data_ = nullptr;
    capacity_ = 0;
    // Grow geometrically so that slowly growing requests do not re-pin every time.
    size_t want = bytes < (size_t{1} << 20) ? (size_t{1} << 20) : bytes + bytes / 2;
    KPT_CUDA_CHECK(cudaHostAlloc(&data_, want, cudaHostAllocDefault));
    capacity_ = want;
  }
  return data_;
}

void PinnedBuffer::mark_in_use(cudaStream_t stream) {
  if (!done_) KPT_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  KPT_CUDA_CHECK(cudaEventRecord(done_, stream));
  pending_ = true;
}

}  // namespace kpt::cuda
