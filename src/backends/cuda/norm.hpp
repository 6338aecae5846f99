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
};

void layer_norm(const NormArgs& args, cudaStream_t stream);
void skip_layer_norm(const NormArgs& args, cudaStream_t stream);
void rms_norm(const NormArgs& args, cudaStream_t stream);  // beta unused

}  // namespace kpt::cuda
