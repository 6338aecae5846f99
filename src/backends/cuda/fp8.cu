#include <cuda_fp8.h>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/fp8.hpp"

namespace kpt::cuda {

namespace {

using detail::to_f32;

template <typename T>
__global__ void amax_kernel(const T* __restrict__ x, int64_t n, float* amax) {
  __shared__ float scratch[32];
  float m = 0.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    m = fmaxf(m, fabsf(to_f32(x[i])));
  m = detail::block_max(m, scratch);
  // Non-negative floats order like their bit patterns as signed ints, so an integer atomicMax
  // is a float max here.
  if (threadIdx.x == 0) atomicMax(reinterpret_cast<int*>(amax), __float_as_int(m));
}

__global__ void scale_kernel(const float* amax, float* scale, float* inverse) {
  scale[0] = fmaxf(amax[0], 1e-12f) / kE4M3Max;
  if (inverse) inverse[0] = 1.0f / scale[0];
}

template <typename T>
__global__ void quantize_kernel(const T* __restrict__ x, int64_t n, const float* scale,
                                __nv_fp8_storage_t* __restrict__ q) {
  const float inv = 1.0f / scale[0];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    q[i] = __nv_cvt_float_to_fp8(to_f32(x[i]) * inv, __NV_SATFINITE, __NV_E4M3);
}

unsigned grid_for(int64_t n, int threads) {
  const int64_t want = (n + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(current_device().multiprocessors) * 8;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, cap)));
}

}  // namespace

void update_amax(DType dtype, const void* x, int64_t n, float* amax, cudaStream_t stream) {
  if (n <= 0) return;
  detail::dispatch_float(dtype, "FP8 amax", [&](auto tag) {
    using T = decltype(tag);
    amax_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<const T*>(x), n, amax);
    KPT_CUDA_CHECK_LAUNCH();
  });
}

void scale_from_amax(const float* amax, float* scale, cudaStream_t stream, float* inverse) {
  scale_kernel<<<1, 1, 0, stream>>>(amax, scale, inverse);
  KPT_CUDA_CHECK_LAUNCH();
}

void quantize_e4m3(DType dtype, const void* x, int64_t n, const float* scale, void* q,
                   cudaStream_t stream) {
  if (n <= 0) return;
  detail::dispatch_float(dtype, "FP8 quantize", [&](auto tag) {
    using T = decltype(tag);
    quantize_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<const T*>(x), n, scale,
                                                             static_cast<__nv_fp8_storage_t*>(q));
    KPT_CUDA_CHECK_LAUNCH();
  });
}

Fp8Calibrator::Fp8Calibrator() {
  require_device();
  KPT_CUDA_CHECK(cudaMalloc(&state_, kStateFloats * sizeof(float)));
  KPT_CUDA_CHECK(cudaMemset(state_, 0, kStateFloats * sizeof(float)));
}

Fp8Calibrator::~Fp8Calibrator() {
  if (state_) cudaFree(state_);
}

void Fp8Calibrator::reset(cudaStream_t stream) {
  KPT_CUDA_CHECK(cudaMemsetAsync(state_, 0, kStateFloats * sizeof(float), stream));
}

void Fp8Calibrator::observe(DType dtype, const void* x, int64_t n, cudaStream_t stream) {
  update_amax(dtype, x, n, state_, stream);
}

const float* Fp8Calibrator::finalize(cudaStream_t stream) {
  scale_from_amax(state_, state_ + kScaleOffset, stream, state_ + 2 * kScaleOffset);
  return state_ + kScaleOffset;
}

float Fp8Calibrator::amax_host(cudaStream_t stream) const {
  float v = 0;
  KPT_CUDA_CHECK(cudaMemcpyAsync(&v, state_, sizeof v, cudaMemcpyDeviceToHost, stream));
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

float Fp8Calibrator::scale_host(cudaStream_t stream) const {
  float v = 0;
  KPT_CUDA_CHECK(
      cudaMemcpyAsync(&v, state_ + kScaleOffset, sizeof v, cudaMemcpyDeviceToHost, stream));
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

}  // namespace kpt::cuda
