#include <algorithm>

#include "backends/cuda/conv.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"

namespace kpt::cuda {

namespace {

using detail::from_f32;
using detail::to_f32;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, 65535 * 16));
}

// One thread per col element, consecutive threads along the output plane so that the writes
// are contiguous; the reads follow with the stride's step.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, int64_t total,
                              Window2d w) {
  const int64_t plane = w.out_h * w.out_w;
  const int64_t taps = w.kernel_h * w.kernel_w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i % plane;
    const int64_t row = i / plane;  // (b, c, ky, kx)
    const int64_t tap = row % taps;
    const int64_t bc = row / taps;  // b * channels + c
    const int64_t ky = tap / w.kernel_w, kx = tap % w.kernel_w;
    const int64_t oy = p / w.out_w, ox = p % w.out_w;
    const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
    const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
    T v = from_f32<T>(0.0f);
    if (iy >= 0 && iy < w.in_h && ix >= 0 && ix < w.in_w) v = x[(bc * w.in_h + iy) * w.in_w + ix];
    col[i] = v;
  }
}

template <typename T>
__global__ void channel_bias_act_kernel(T* __restrict__ y, const T* __restrict__ bias,
                                        int64_t total, int64_t channels, int64_t plane, bool relu) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = to_f32(y[i]);
    if (bias) v += to_f32(bias[(i / plane) % channels]);
    if (relu) v = fmaxf(v, 0.0f);
    y[i] = from_f32<T>(v);
  }
}

template <typename T, bool kMax>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t total, Window2d w,
                            bool count_include_pad) {
  const int64_t plane = w.out_h * w.out_w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i % plane;
    const int64_t bc = i / plane;
    const int64_t oy = p / w.out_w, ox = p % w.out_w;
    const T* src = x + bc * w.in_h * w.in_w;
    float acc = kMax ? -INFINITY : 0.0f;
    int64_t inside = 0, padded = 0;
    for (int64_t ky = 0; ky < w.kernel_h; ++ky) {
      const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
      for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
        const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
        if (iy >= -w.pad_top && iy < w.in_h + w.pad_bottom && ix >= -w.pad_left &&
            ix < w.in_w + w.pad_right)
          ++padded;
        if (iy < 0 || iy >= w.in_h || ix < 0 || ix >= w.in_w) continue;
        const float v = to_f32(src[iy * w.in_w + ix]);
        if constexpr (kMax) {
          acc = fmaxf(acc, v);
        } else {
          acc += v;
        }
        ++inside;
      }
    }
    if constexpr (!kMax) {
      const int64_t count = count_include_pad ? padded : inside;
      acc = count > 0 ? acc / static_cast<float>(count) : 0.0f;
    }
    y[i] = from_f32<T>(acc);
  }
}

}  // namespace

void im2col(DType dtype, const void* x, void* col, int64_t images, const Window2d& w,
            cudaStream_t stream) {
  const int64_t total = images * w.channels * w.kernel_h * w.kernel_w * w.out_h * w.out_w;
  if (total == 0) return;
  detail::dispatch_float(dtype, "im2col", [&](auto t) {
    using T = decltype(t);
    im2col_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                                 static_cast<T*>(col), total, w);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

void channel_bias_act(DType dtype, void* y, const void* bias, int64_t images, int64_t channels,
                      int64_t plane, bool relu, cudaStream_t stream) {
  const int64_t total = images * channels * plane;
  if (total == 0) return;
  detail::dispatch_float(dtype, "channel bias", [&](auto t) {
    using T = decltype(t);
    channel_bias_act_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), total, channels, plane, relu);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

void max_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                cudaStream_t stream) {
  const int64_t total = images * w.channels * w.out_h * w.out_w;
  if (total == 0) return;
  detail::dispatch_float(dtype, "MaxPool", [&](auto t) {
    using T = decltype(t);
    pool_kernel<T, true><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), total, w, false);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

void avg_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                bool count_include_pad, cudaStream_t stream) {
  const int64_t total = images * w.channels * w.out_h * w.out_w;
  if (total == 0) return;
  detail::dispatch_float(dtype, "AveragePool", [&](auto t) {
    using T = decltype(t);
    pool_kernel<T, false><<<blocks_for(total), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), total, w, count_include_pad);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kpt::cuda
