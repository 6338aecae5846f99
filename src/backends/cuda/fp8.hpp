#pragma once
// FP8 (e4m3) per-tensor scaling on the GPU. A scale maps a tensor's range onto e4m3's:
// scale = amax / 448 (448 is e4m3's largest finite value), q = saturate(x / scale), and the
// GEMM multiplies its product by the two scales back. Calibration observes batches of a
// tensor (activations of representative inputs; weights once) and keeps the largest |x|
// seen, all on the device, so that no step waits for the host.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

constexpr float kE4M3Max = 448.0f;

// amax[0] = max(amax[0], max |x|) over n elements of x (f32, f16 or bf16).
void update_amax(DType dtype, const void* x, int64_t n, float* amax, cudaStream_t stream);
// scale[0] = max(amax[0], tiny) / 448 (tiny keeps an all-zero tensor's scale finite); with
// `inverse`, inverse[0] = 1 / scale[0] (what a producer writing e4m3 for this reader multiplies
// by).
void scale_from_amax(const float* amax, float* scale, cudaStream_t stream,
                     float* inverse = nullptr);
// q[i] = e4m3(x[i] / scale[0]), saturating to +-448 (NaN stays NaN).
void quantize_e4m3(DType dtype, const void* x, int64_t n, const float* scale, void* q,
                   cudaStream_t stream);

// Running amax and the scale derived from it, both in device memory.
class Fp8Calibrator {
 public:
  Fp8Calibrator();
  ~Fp8Calibrator();
  Fp8Calibrator(const Fp8Calibrator&) = delete;
  Fp8Calibrator& operator=(const Fp8Calibrator&) = delete;

  void reset(cudaStream_t stream);
  void observe(DType dtype, const void* x, int64_t n, cudaStream_t stream);
  // Computes the scale from what was observed; returns the device pointer the GEMM reads.
  const float* finalize(cudaStream_t stream);
  const float* scale() const { return state_ + kScaleOffset; }
  const float* inverse_scale() const { return state_ + 2 * kScaleOffset; }
  // Host copies (synchronize `stream`): for reports and tests.
  float amax_host(cudaStream_t stream) const;
  float scale_host(cudaStream_t stream) const;

 private:
  // [0] amax, [kScaleOffset] scale, [2 * kScaleOffset] 1 / scale: 16 bytes apart so the
  // pointers the GEMM reads are as aligned as a fresh allocation.
  static constexpr int kScaleOffset = 4;
  static constexpr int kStateFloats = 3 * kScaleOffset;
  float* state_ = nullptr;
};

}  // namespace kpt::cuda
