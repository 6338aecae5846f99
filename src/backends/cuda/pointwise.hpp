#pragma once
// Row-wise and element-wise kernels on the GPU (f32, f16 or bf16; arithmetic in fp32):
// softmax over the last axis, GELU with an optional bias fused in, rotary position embedding.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

// y[r, :] = softmax(x[r, :]) for a [rows, cols] tensor.
void softmax(DType dtype, const void* x, void* y, int64_t rows, int64_t cols, cudaStream_t stream);

// y = gelu(x + bias[col]) for a [rows, cols] tensor; bias may be nullptr. `tanh_approx` selects
// ONNX Gelu's approximate="tanh", else the exact erf form.
void gelu(DType dtype, const void* x, const void* bias, void* y, int64_t rows, int64_t cols,
          bool tanh_approx, cudaStream_t stream);

// ONNX RotaryEmbedding on [batch, heads, seq, head_size] x: pairs (i, i + rot/2) (or (2i, 2i+1)
// when interleaved) of the first `rotary_dim` features are rotated by cos/sin caches
// [max_pos, rotary_dim/2] (same dtype as x) at position_ids [batch, seq] (int64). In place
// allowed (y == x).
struct RotaryArgs {
  DType dtype = DType::F32;
  int64_t batch = 0, heads = 0, seq = 0, head_size = 0, rotary_dim = 0, max_pos = 0;
  const void* x = nullptr;
  const void* cos = nullptr;
  const void* sin = nullptr;
  const int64_t* position_ids = nullptr;
  void* y = nullptr;
  bool interleaved = false;
};
void rotary_embedding(const RotaryArgs& args, cudaStream_t stream);

}  // namespace kpt::cuda
