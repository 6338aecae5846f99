#include <type_traits>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/reduce.hpp"

namespace kpt::cuda {

namespace {

using detail::from_f32;
using detail::to_f32;

template <typename T>
__global__ void row_mean_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols) {
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * cols;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += to_f32(xr[c]);
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) y[blockIdx.x] = from_f32<T>(s / static_cast<float>(cols));
}

template <typename T>
__device__ __forceinline__ int key_state(T v) {  // 1 visible, 0 masked, -1 neither
  if constexpr (std::is_same_v<T, uint8_t>) {
    return v ? 1 : 0;
  } else {
    const float f = to_f32(v);
    return f == 0.0f ? 1 : (f <= -1e3f ? 0 : -1);
  }
}

// One block per batch row: counts visible keys and finds the last one; a prefix has
// last + 1 == count.
template <typename T>
__global__ void mask_lengths_kernel(const T* __restrict__ mask, int64_t batch_stride,
                                    int64_t seq_kv, int32_t* kv_lens, int32_t* error_word) {
  __shared__ float scratch[32];
  const T* row = mask + blockIdx.x * batch_stride;
  float count = 0.0f, last = -1.0f, bad = 0.0f;
  for (int64_t j = threadIdx.x; j < seq_kv; j += blockDim.x) {
    const int s = key_state(row[j]);
    if (s == 1) {
      count += 1.0f;
      last = fmaxf(last, static_cast<float>(j));
    }
    if (s < 0) bad = 1.0f;
  }
  count = detail::block_sum(count, scratch);
  last = detail::block_max(last, scratch);
  bad = detail::block_max(bad, scratch);
  if (threadIdx.x == 0) {
    kv_lens[blockIdx.x] = static_cast<int32_t>(count);
    if (bad > 0.0f) atomicOr(error_word, kMaskNotKeyPadding);
    if (last + 1.0f != count) atomicOr(error_word, kMaskNotTrailing);
  }
}

}  // namespace

void row_mean(DType dtype, const void* x, void* y, int64_t rows, int64_t cols,
              cudaStream_t stream) {
  if (rows == 0) return;
  detail::dispatch_float(dtype, "ReduceMean", [&](auto t) {
    using T = decltype(t);
    row_mean_kernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(static_cast<const T*>(x),
                                                                     static_cast<T*>(y), cols);
  });
  KPT_CUDA_CHECK_LAUNCH();
}

void mask_to_lengths(DType dtype, const void* mask, int64_t batch, int64_t batch_stride,
                     int64_t seq_kv, int32_t* kv_lens, int32_t* error_word, cudaStream_t stream) {
  if (batch == 0) return;
  const auto grid = static_cast<unsigned>(batch);
  if (dtype == DType::Bool) {
    mask_lengths_kernel<<<grid, 256, 0, stream>>>(static_cast<const uint8_t*>(mask), batch_stride,
                                                  seq_kv, kv_lens, error_word);
  } else {
    detail::dispatch_float(dtype, "attention mask", [&](auto t) {
      using T = decltype(t);
      mask_lengths_kernel<<<grid, 256, 0, stream>>>(static_cast<const T*>(mask), batch_stride,
                                                    seq_kv, kv_lens, error_word);
    });
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
