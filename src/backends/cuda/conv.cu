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
// tensor row (blockIdx.x) and a few blocks (blockIdx.y) whose threads step through the plane:
// the per-row index arithmetic is done once per thread, in 32 bits, and the plane position
// comes from a float reciprocal with one correction. Integer division per element, 64-bit at
// that, cost more than these kernels' memory traffic (im2col ran at 0.4 TB/s with it).
constexpr int kMaxPlaneBlocks = 8;

dim3 grid_for(int64_t rows, int64_t plane, int threads) {
  const int64_t chunks = std::min<int64_t>((plane + threads - 1) / threads, kMaxPlaneBlocks);
  return dim3(static_cast<unsigned>(rows), static_cast<unsigned>(chunks));
}

int threads_for(int64_t plane) {
  return plane >= kThreads ? kThreads : static_cast<int>((plane + 31) / 32 * 32);
}

// Rows index the grid (2^31 - 1 at most); plane positions stay exact in a float (2^24).
void check_sizes(int64_t rows, int64_t plane, const char* what) {
  if (rows > INT32_MAX || plane >= (int64_t{1} << 24))
    throw Error(std::string(what) + ": tensor too large for the GPU kernel's grid");
}

// (oy, ox) of plane position p in rows of `out_w`: p * (1 / out_w) is within one of p / out_w.
__device__ __forceinline__ void plane_position(int p, int out_w, float inv_w, int& oy, int& ox) {
  oy = static_cast<int>(static_cast<float>(p) * inv_w);
  ox = p - oy * out_w;
  if (ox < 0) {
    --oy;
    ox += out_w;
  } else if (ox >= out_w) {
    ++oy;
    ox -= out_w;
  }
}

// Block row = (image, channel, ky, kx) of col; threads along the output plane, so the writes
// are contiguous and the reads follow with the stride's step.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, Window2d w,
                              int64_t col_ld, int64_t col_rows) {
  const int row = static_cast<int>(blockIdx.x);
  const int taps = static_cast<int>(w.kernel_h * w.kernel_w);
  const int kw = static_cast<int>(w.kernel_w);
  const int k = static_cast<int>(w.channels) * taps;  // col rows an image has
  const int image = row / k, r = row - image * k;     // r = channel * taps + tap
  const int c = r / taps, tap = r - c * taps;
  const int ky = tap / kw, kx = tap - ky * kw;
  const int in_h = static_cast<int>(w.in_h), in_w = static_cast<int>(w.in_w);
  const T* src = x + (static_cast<int64_t>(image) * w.channels + c) * w.in_h * w.in_w;
  T* dst = col + (static_cast<int64_t>(image) * col_rows + r) * col_ld;
  const int out_w = static_cast<int>(w.out_w);
  const int plane = static_cast<int>(w.out_h) * out_w;
  const float inv_w = 1.0f / static_cast<float>(out_w);
  const int sh = static_cast<int>(w.stride_h), sw = static_cast<int>(w.stride_w);
  const int y0 = ky * static_cast<int>(w.dilation_h) - static_cast<int>(w.pad_top);
  const int x0 = kx * static_cast<int>(w.dilation_w) - static_cast<int>(w.pad_left);
  for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < plane; p += gridDim.y * blockDim.x) {
    int oy, ox;
    plane_position(p, out_w, inv_w, oy, ox);
    const int iy = oy * sh + y0, ix = ox * sw + x0;
    T v = from_f32<T>(0.0f);
    if (static_cast<unsigned>(iy) < static_cast<unsigned>(in_h) &&
        static_cast<unsigned>(ix) < static_cast<unsigned>(in_w))
      v = src[iy * in_w + ix];
    dst[p] = v;
  }
}

template <typename T>
__global__ void bias_residual_act_kernel(const T* src, int64_t src_ld, T* y,
                                         const T* __restrict__ bias, const T* __restrict__ residual,
                                         int channels, int plane, bool relu) {
  const int row = static_cast<int>(blockIdx.x);  // image * channels + channel
  const float b = bias ? to_f32(bias[row % channels]) : 0.0f;
  const T* s = src + static_cast<int64_t>(row) * src_ld;
  const T* res = residual ? residual + static_cast<int64_t>(row) * plane : nullptr;
  T* out = y + static_cast<int64_t>(row) * plane;
  for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < plane; p += gridDim.y * blockDim.x) {
    float v = to_f32(s[p]) + b;
    if (res) v += to_f32(res[p]);
    if (relu) v = fmaxf(v, 0.0f);
    out[p] = from_f32<T>(v);
  }
}

template <typename T, bool kMax>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, Window2d w,
                            bool count_include_pad) {
  const int out_w = static_cast<int>(w.out_w);
  const int plane = static_cast<int>(w.out_h) * out_w;
  const float inv_w = 1.0f / static_cast<float>(out_w);
  const int64_t bc = blockIdx.x;
  const T* src = x + bc * w.in_h * w.in_w;
  for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < plane; p += gridDim.y * blockDim.x) {
    int oy, ox;
    plane_position(p, out_w, inv_w, oy, ox);
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
}

}  // namespace

void im2col(DType dtype, const void* x, void* col, int64_t images, const Window2d& w,
            int64_t col_ld, int64_t col_rows, cudaStream_t stream) {
  const int64_t rows = images * w.channels * w.kernel_h * w.kernel_w;
  const int64_t plane = w.out_h * w.out_w;
  if (rows == 0 || plane == 0) return;
  if (col_ld < plane || col_rows < w.channels * w.kernel_h * w.kernel_w)
    throw Error("im2col: the col strides are shorter than the plane or the image's rows");
  check_sizes(rows, plane, "im2col");
  const int threads = threads_for(plane);
  detail::dispatch_float(dtype, "im2col", [&](auto t) {
    using T = decltype(t);
    im2col_kernel<T><<<grid_for(rows, plane, threads), threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(col), w, col_ld, col_rows);
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
        static_cast<const T*>(residual), static_cast<int>(channels), static_cast<int>(plane), relu);
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
