// Rows of up to 512 16-byte vectors (4096 f16/bf16 values, 2048 f32), the transformer case: one
// warp per row, the row held in registers, loads and stores 16 bytes wide, reductions by warp
// shuffles alone (no block barrier), so the kernel runs at memory speed. Other rows: one block
// per row with the row kept in shared memory. Both read the input once and compute mean and
// variance in two passes over the kept copy (no cancellation from E[x^2] - E[x]^2).
#include <cuda_fp8.h>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/smem_limit.hpp"

namespace kpt::cuda {

namespace {

using detail::block_sum;
using detail::from_f32;
using detail::Pack;
using detail::to_f32;

enum class Kind { Layer, SkipLayer, Rms };

template <typename T, Kind kind>
__global__ void norm_kernel(const T* __restrict__ x, const T* __restrict__ skip,
                            const T* __restrict__ bias, const T* __restrict__ gamma,
                            const T* __restrict__ beta, T* __restrict__ y, T* __restrict__ sum_out,
                            __nv_fp8_storage_t* __restrict__ yq, const float* __restrict__ yq_inv,
                            int64_t cols, float epsilon) {
  extern __shared__ float row[];
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * cols;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = to_f32(xr[c]);
    if constexpr (kind == Kind::SkipLayer) {
      v += to_f32(skip[r * cols + c]);
      if (bias) v += to_f32(bias[c]);
      // The sum is what the next residual reads, rounded to T as an unfused graph would.
      const T rounded = from_f32<T>(v);
      if (sum_out) sum_out[r * cols + c] = rounded;
      v = to_f32(rounded);
    }
    row[c] = v;
    if constexpr (kind != Kind::Rms) s += v;
  }
  const float inv_cols = 1.0f / static_cast<float>(cols);
  float mean = 0.0f;
  if constexpr (kind != Kind::Rms) mean = block_sum(s, scratch) * inv_cols;
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = row[c] - mean;
    q += d * d;
  }
  const float inv_std = rsqrtf(block_sum(q, scratch) * inv_cols + epsilon);
  const float q_inv = yq ? yq_inv[0] : 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = (row[c] - mean) * inv_std * to_f32(gamma[c]);
    if (kind != Kind::Rms && beta) v += to_f32(beta[c]);
    const T out = from_f32<T>(v);
    y[r * cols + c] = out;
    if (yq)
      yq[r * cols + c] = __nv_cvt_float_to_fp8(to_f32(out) * q_inv, __NV_SATFINITE, __NV_E4M3);
  }
}

// Vectors per lane: each lane holds `vpl` 16-byte vectors of its row.
template <typename T, Kind kind, int vpl>
__global__ void __launch_bounds__(128)
    norm_warp_kernel(const T* __restrict__ x, const T* __restrict__ skip,
                     const T* __restrict__ bias, const T* __restrict__ gamma,
                     const T* __restrict__ beta, T* __restrict__ y, T* __restrict__ sum_out,
                     __nv_fp8_storage_t* __restrict__ yq, const float* __restrict__ yq_inv,
                     int64_t rows, int cols, float epsilon) {
  constexpr int E = Pack<T>::kCount;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;
  const int nvec = cols / E;
  const auto* xr = reinterpret_cast<const Pack<T>*>(x + r * cols);
  float v[vpl][E];
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < vpl; ++j) {
    const int c = lane + j * 32;
    if (c >= nvec) continue;
    const Pack<T> p = xr[c];
#pragma unroll
    for (int e = 0; e < E; ++e) v[j][e] = to_f32(p.v[e]);
    if constexpr (kind == Kind::SkipLayer) {
      const Pack<T> q = reinterpret_cast<const Pack<T>*>(skip + r * cols)[c];
      Pack<T> b{};
      if (bias) b = reinterpret_cast<const Pack<T>*>(bias)[c];
      Pack<T> rounded;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        float t = v[j][e] + to_f32(q.v[e]);
        if (bias) t += to_f32(b.v[e]);
        // The sum is what the next residual reads, rounded to T as an unfused graph would.
        rounded.v[e] = from_f32<T>(t);
        v[j][e] = to_f32(rounded.v[e]);
      }
      if (sum_out) reinterpret_cast<Pack<T>*>(sum_out + r * cols)[c] = rounded;
    }
#pragma unroll
    for (int e = 0; e < E; ++e) s += v[j][e];
  }
  const float inv_cols = 1.0f / static_cast<float>(cols);
  float mean = 0.0f;
  if constexpr (kind != Kind::Rms) mean = detail::warp_sum(s) * inv_cols;
  float q = 0.0f;
#pragma unroll
  for (int j = 0; j < vpl; ++j) {
    if (lane + j * 32 >= nvec) continue;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const float d = v[j][e] - mean;
      q += d * d;
    }
  }
  const float inv_std = rsqrtf(detail::warp_sum(q) * inv_cols + epsilon);
  auto* yr = reinterpret_cast<Pack<T>*>(y + r * cols);
  const float q_inv = yq ? yq_inv[0] : 0.0f;
#pragma unroll
  for (int j = 0; j < vpl; ++j) {
    const int c = lane + j * 32;
    if (c >= nvec) continue;
    const Pack<T> g = reinterpret_cast<const Pack<T>*>(gamma)[c];
    Pack<T> b{};
    if (kind != Kind::Rms && beta) b = reinterpret_cast<const Pack<T>*>(beta)[c];
    Pack<T> out;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      float t = (v[j][e] - mean) * inv_std * to_f32(g.v[e]);
      if (kind != Kind::Rms && beta) t += to_f32(b.v[e]);
      out.v[e] = from_f32<T>(t);
    }
    yr[c] = out;
    if (yq) {
      __nv_fp8_storage_t qv[E];
#pragma unroll
      for (int e = 0; e < E; ++e)
        qv[e] = __nv_cvt_float_to_fp8(to_f32(out.v[e]) * q_inv, __NV_SATFINITE, __NV_E4M3);
      __nv_fp8_storage_t* dst = yq + r * cols + static_cast<int64_t>(c) * E;
#pragma unroll
      for (int e = 0; e < E; ++e) dst[e] = qv[e];
    }
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// The warp-per-row kernel when the row fits its registers and every pointer is 16-byte aligned.
template <typename T, Kind kind>
bool launch_warp_rows(const NormArgs& a, cudaStream_t stream) {
  constexpr int E = Pack<T>::kCount;
  if (a.cols % E != 0 || a.cols > 512 * E) return false;
  for (const void* p : {a.x, a.skip, a.bias, a.gamma, a.beta, static_cast<const void*>(a.y),
                        static_cast<const void*>(a.sum)}) {
    if (p && !aligned16(p)) return false;
  }
  const int lanes_vectors = static_cast<int>((a.cols / E + 31) / 32);
  const int rows_per_block = 4;
  const auto grid = static_cast<unsigned>((a.rows + rows_per_block - 1) / rows_per_block);
  auto go = [&](auto kernel) {
    kernel<<<grid, 32 * rows_per_block, 0, stream>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.skip), static_cast<const T*>(a.bias),
        static_cast<const T*>(a.gamma), static_cast<const T*>(a.beta), static_cast<T*>(a.y),
        static_cast<T*>(a.sum), static_cast<__nv_fp8_storage_t*>(a.y_e4m3), a.y_e4m3_inverse_scale,
        a.rows, static_cast<int>(a.cols), a.epsilon);
  };
  // Two register footprints only: each instantiation is 3 kinds x 3 types x 2 architectures of
  // unrolled code, and rows of up to 1024 f16 values (BERT's 768 included) fit the smaller one.
  if (lanes_vectors <= 4) {
    go(norm_warp_kernel<T, kind, 4>);
  } else {
    go(norm_warp_kernel<T, kind, 16>);
  }
  KPT_CUDA_CHECK_LAUNCH();
  return true;
}

template <Kind kind>
void launch(const NormArgs& a, cudaStream_t stream, const char* what) {
  if (a.rows <= 0 || a.cols <= 0) return;
  if (!a.x || !a.gamma || !a.y) throw Error(std::string(what) + ": x, gamma and y are required");
  if (kind == Kind::SkipLayer && !a.skip) throw Error("skip LayerNorm needs skip");
  if (a.y_e4m3 && !a.y_e4m3_inverse_scale)
    throw Error(std::string(what) + ": an e4m3 copy of y needs its inverse scale");
  const size_t smem = static_cast<size_t>(a.cols) * sizeof(float);
  const int threads = a.cols <= 1024 ? 128 : 256;
  detail::dispatch_float(a.dtype, what, [&](auto tag) {
    using T = decltype(tag);
    if (launch_warp_rows<T, kind>(a, stream)) return;
    auto* kernel = norm_kernel<T, kind>;
    ensure_dynamic_smem<norm_kernel<T, kind>>(static_cast<int>(smem));
    kernel<<<static_cast<unsigned>(a.rows), threads, smem, stream>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.skip), static_cast<const T*>(a.bias),
        static_cast<const T*>(a.gamma), static_cast<const T*>(a.beta), static_cast<T*>(a.y),
        static_cast<T*>(a.sum), static_cast<__nv_fp8_storage_t*>(a.y_e4m3), a.y_e4m3_inverse_scale,
        a.cols, a.epsilon);
    KPT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void layer_norm(const NormArgs& args, cudaStream_t stream) {
  launch<Kind::Layer>(args, stream, "LayerNorm");
}
void skip_layer_norm(const NormArgs& args, cudaStream_t stream) {
  launch<Kind::SkipLayer>(args, stream, "skip LayerNorm");
}
void rms_norm(const NormArgs& args, cudaStream_t stream) {
  launch<Kind::Rms>(args, stream, "RMSNorm");
}

}  // namespace kpt::cuda
