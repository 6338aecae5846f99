#pragma once
// Normalizations over the last axis of a [rows, cols] tensor on the GPU (f32, f16 or bf16;
// statistics in fp32): LayerNorm, skip-LayerNorm (the residual add fused in, optionally
// writing the sum for the next residual) and RMSNorm.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

struct NormArgs {
  DType dtype = DType::F32;  // of x, skip, bias, gamma, beta, y, sum
  int64_t rows = 0, cols = 0;
  const void* x = nullptr;
  const void* gamma = nullptr;  // [cols]
  const void* beta = nullptr;   // [cols] or nullptr
  void* y = nullptr;
  float epsilon = 1e-5f;
  // skip-LayerNorm only: y = LN(x + skip (+ bias)); `sum` (optional) receives x + skip + bias.
  const void* skip = nullptr;
  const void* bias = nullptr;
  void* sum = nullptr;
  // Optional: y also in e4m3, e4m3(y * y_e4m3_inverse_scale[0]) saturated from y as rounded to
  // the type: the bytes quantize_e4m3 (fp8.hpp) makes of y, for an FP8 product reading y
  // (fp8_product.hpp) without a pass of its own.
  void* y_e4m3 = nullptr;
  const float* y_e4m3_inverse_scale = nullptr;
};

void layer_norm(const NormArgs& args, cudaStream_t stream);
void skip_layer_norm(const NormArgs& args, cudaStream_t stream);
void rms_norm(const NormArgs& args, cudaStream_t stream);  // beta unused

}  // namespace kpt::cuda
