// One block per row. The row (after the fused residual add) is kept in shared memory so the
// input is read from device memory once; mean and variance are computed in two passes over
// that copy (no cancellation from E[x^2] - E[x]^2).
#include <cuda_fp8.h>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/smem_limit.hpp"

namespace kpt::cuda {

namespace {

using detail::block_sum;
using detail::from_f32;
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
