#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/pointwise.hpp"

namespace kpt::cuda {

namespace {

using detail::from_f32;
using detail::to_f32;

// One block per row; the row is read twice (max, then exp-sum) and written once. Rows of
// transformer softmaxes are short, so the second read hits L1/L2.
template <typename T>
__global__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols) {
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * cols;
  T* yr = y + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, to_f32(xr[c]));
  m = detail::block_max(m, scratch);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += __expf(to_f32(xr[c]) - m);
  const float inv = 1.0f / detail::block_sum(s, scratch);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = from_f32<T>(__expf(to_f32(xr[c]) - m) * inv);
}

template <typename T>
__global__ void gelu_kernel(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y,
                            int64_t n, int64_t cols, bool tanh_approx) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = to_f32(x[i]);
    if (bias) v += to_f32(bias[i % cols]);
    float g;
    if (tanh_approx) {
      const float k = 0.7978845608028654f;  // sqrt(2/pi)
      g = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    } else {
      g = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    }
    y[i] = from_f32<T>(g);
  }
}

template <typename T>
__global__ void rotary_kernel(const T* __restrict__ x, const T* __restrict__ cos_cache,
                              const T* __restrict__ sin_cache, const int64_t* __restrict__ pos,
                              T* y, int64_t heads, int64_t seq, int64_t head_size, int64_t half,
                              int64_t max_pos, bool interleaved) {
  // One block per (batch, head, position) row; threads over the row's features.
  const int64_t row = blockIdx.x;
  const int64_t s = row % seq;
  const int64_t b = row / (seq * heads);
  const int64_t p = pos[b * seq + s];
  const T* xr = x + row * head_size;
  T* yr = y + row * head_size;
  if (p < 0 || p >= max_pos) return;  // the host checked ids; never read outside the cache
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const int64_t i1 = interleaved ? 2 * i : i;
    const int64_t i2 = interleaved ? 2 * i + 1 : i + half;
    const float c = to_f32(cos_cache[p * half + i]), sn = to_f32(sin_cache[p * half + i]);
    const float x1 = to_f32(xr[i1]), x2 = to_f32(xr[i2]);
    yr[i1] = from_f32<T>(c * x1 - sn * x2);
    yr[i2] = from_f32<T>(sn * x1 + c * x2);
  }
  if (yr != xr)
    for (int64_t i = 2 * half + threadIdx.x; i < head_size; i += blockDim.x) yr[i] = xr[i];
}

}  // namespace

void softmax(DType dtype, const void* x, void* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const int threads = cols <= 256 ? 64 : (cols <= 2048 ? 128 : 256);
  detail::dispatch_float(dtype, "Softmax", [&](auto tag) {
    using T = decltype(tag);
    softmax_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), cols);
    KPT_CUDA_CHECK_LAUNCH();
  });
}

void gelu(DType dtype, const void* x, const void* bias, void* y, int64_t rows, int64_t cols,
          bool tanh_approx, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535 * 8);
  detail::dispatch_float(dtype, "Gelu", [&](auto tag) {
    using T = decltype(tag);
    gelu_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<T*>(y), n, cols,
        tanh_approx);
    KPT_CUDA_CHECK_LAUNCH();
  });
}

void rotary_embedding(const RotaryArgs& a, cudaStream_t stream) {
  if (a.rotary_dim <= 0 || a.rotary_dim % 2 != 0 || a.rotary_dim > a.head_size)
    throw Error("RotaryEmbedding: rotary_dim must be even and at most the head size");
  const int64_t rows = a.batch * a.heads * a.seq;
  if (rows <= 0) return;
  const int64_t half = a.rotary_dim / 2;
  const int threads = half >= 64 ? 64 : 32;
  detail::dispatch_float(a.dtype, "RotaryEmbedding", [&](auto tag) {
    using T = decltype(tag);
    rotary_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.cos), static_cast<const T*>(a.sin),
        a.position_ids, static_cast<T*>(a.y), a.heads, a.seq, a.head_size, half, a.max_pos,
        a.interleaved);
    KPT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kpt::cuda
