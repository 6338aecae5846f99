#include <algorithm>
#include <climits>
#include <string>

#include "backends/cuda/conv.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"

namespace kpt::cuda {

namespace {

using detail::from_f32;
using detail::to_f32;

constexpr int kThreads = 256;

// Kernels over [rows, plane] tensors (rows = images x channels (x taps)) run one block row per
// tensor row (blockIdx.x, up to 2^31 - 1) and blockIdx.y over the plane, so that each thread
// divides only its 32-bit plane index: 64-bit division per element would cost more than the
// memory traffic of these kernels.
dim3 grid_for(int64_t rows, int64_t plane, int threads) {
  return dim3(static_cast<unsigned>(rows), static_cast<unsigned>((plane + threads - 1) / threads));
}

int threads_for(int64_t plane) {
  return plane >= kThreads ? kThreads : static_cast<int>((plane + 31) / 32 * 32);
}

void check_sizes(int64_t rows, int64_t plane, const char* what) {
  if (rows > INT32_MAX || plane > INT32_MAX || (plane + kThreads - 1) / kThreads > 65535)
    throw Error(std::string(what) + ": tensor too large for the GPU kernel's grid");
}

// Block row = (image, channel, ky, kx) of col; threads along the output plane, so the writes
// are contiguous and the reads follow with the stride's step.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, Window2d w,
                              int64_t col_ld) {
  const int plane = static_cast<int>(w.out_h * w.out_w);
  const int p = blockIdx.y * blockDim.x + threadIdx.x;
  if (p >= plane) return;
  const int64_t row = blockIdx.x;
  const int taps = static_cast<int>(w.kernel_h * w.kernel_w);
  const int tap = static_cast<int>(row % taps);
  const int64_t bc = row / taps;  // image * channels + channel
  const int ky = tap / static_cast<int>(w.kernel_w), kx = tap % static_cast<int>(w.kernel_w);
  const int out_w = static_cast<int>(w.out_w);
  const int oy = p / out_w, ox = p - oy * out_w;
  const int iy = oy * static_cast<int>(w.stride_h) - static_cast<int>(w.pad_top) +
                 ky * static_cast<int>(w.dilation_h);
  const int ix = ox * static_cast<int>(w.stride_w) - static_cast<int>(w.pad_left) +
                 kx * static_cast<int>(w.dilation_w);
  T v = from_f32<T>(0.0f);
  if (iy >= 0 && iy < w.in_h && ix >= 0 && ix < w.in_w) v = x[(bc * w.in_h + iy) * w.in_w + ix];
  col[row * col_ld + p] = v;
}

template <typename T>
__global__ void bias_residual_act_kernel(const T* src, int64_t src_ld, T* y,
                                         const T* __restrict__ bias, const T* __restrict__ residual,
                                         int64_t channels, int plane, bool relu) {
  const int p = blockIdx.y * blockDim.x + threadIdx.x;
  if (p >= plane) return;
  const int64_t row = blockIdx.x;  // image * channels + channel
  float v = to_f32(src[row * src_ld + p]);
  if (bias) v += to_f32(bias[row % channels]);
  if (residual) v += to_f32(residual[row * plane + p]);
  if (relu) v = fmaxf(v, 0.0f);
  y[row * plane + p] = from_f32<T>(v);
}

template <typename T, bool kMax>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, Window2d w,
                            bool count_include_pad) {
  const int out_w = static_cast<int>(w.out_w);
  const int plane = static_cast<int>(w.out_h) * out_w;
  const int p = blockIdx.y * blockDim.x + threadIdx.x;
  if (p >= plane) return;
  const int64_t bc = blockIdx.x;
  const int oy = p / out_w, ox = p - oy * out_w;
  const T* src = x + bc * w.in_h * w.in_w;
  float acc = kMax ? -INFINITY : 0.0f;
  int inside = 0, padded = 0;
  for (int ky = 0; ky < w.kernel_h; ++ky) {
    const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
    for (int kx = 0; kx < w.kernel_w; ++kx) {
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
    const int count = count_include_pad ? padded : inside;
    acc = count > 0 ? acc / static_cast<float>(count) : 0.0f;
  }
  y[bc * plane + p] = from_f32<T>(acc);
}

}  // namespace

void im2col(DType dtype, const void* x, void* col, int64_t images, const Window2d& w,
            int64_t col_ld, cudaStream_t stream) {
  const int64_t rows = images * w.channels * w.kernel_h * w.kernel_w;
  const int64_t plane = w.out_h * w.out_w;
  if (rows == 0 || plane == 0) return;
  if (col_ld < plane) throw Error("im2col: the col row stride is shorter than the plane");
  check_sizes(rows, plane, "im2col");
  const int threads = threads_for(plane);
  detail::dispatch_float(dtype, "im2col", [&](auto t) {
    using T = decltype(t);
    im2col_kernel<T><<<grid_for(rows, plane, threads), threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(col), w, col_ld);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

void bias_residual_act(DType dtype, const void* src, int64_t src_ld, void* y, const void* bias,
                       const void* residual, int64_t images, int64_t channels, int64_t plane,
                       bool relu, cudaStream_t stream) {
  const int64_t rows = images * channels;
  if (rows == 0 || plane == 0) return;
  if (src_ld < plane)
    throw Error("bias_residual_act: the source row stride is shorter than the plane");
  check_sizes(rows, plane, "bias_residual_act");
  const int threads = threads_for(plane);
  detail::dispatch_float(dtype, "bias_residual_act", [&](auto t) {
    using T = decltype(t);
    bias_residual_act_kernel<T><<<grid_for(rows, plane, threads), threads, 0, stream>>>(
        static_cast<const T*>(src), src_ld, static_cast<T*>(y), static_cast<const T*>(bias),
        static_cast<const T*>(residual), channels, static_cast<int>(plane), relu);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

namespace {

template <bool kMax>
void pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
            bool count_include_pad, cudaStream_t stream, const char* what) {
  const int64_t rows = images * w.channels;
  const int64_t plane = w.out_h * w.out_w;
  if (rows == 0 || plane == 0) return;
  check_sizes(rows, plane, what);
  const int threads = threads_for(plane);
  detail::dispatch_float(dtype, what, [&](auto t) {
    using T = decltype(t);
    pool_kernel<T, kMax><<<grid_for(rows, plane, threads), threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), w, count_include_pad);
  });
  KPT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void max_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                cudaStream_t stream) {
  pool2d<true>(dtype, x, y, images, w, false, stream, "MaxPool");
}

void avg_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                bool count_include_pad, cudaStream_t stream) {
  pool2d<false>(dtype, x, y, images, w, count_include_pad, stream, "AveragePool");
}

}  // namespace kpt::cuda
