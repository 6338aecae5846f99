#pragma once
// Scaled dot-product attention on the GPU, flash-style: one pass over K and V per block of
// queries with an online softmax, so the [seq_q, seq_kv] score matrix never reaches device
// memory. Tensor-core (mma.sync) kernels for f16 and bf16 with head dims 64 and 128.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

struct AttentionArgs {
  DType dtype = DType::F16;  // F16 or BF16 (Q, K, V and O)
  int64_t batch = 0, heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  // [batch, heads, seq, head_dim], contiguous.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* o = nullptr;
  float scale = 0.0f;  // 0: 1/sqrt(head_dim)
  // Key j is visible to query i only when j <= i (top-left aligned, as ONNX Attention's
  // is_causal without a past).
  bool causal = false;
  // Key padding: batch b sees only its first kv_lens[b] keys ([batch] int32 on the device);
  // nullptr: all keys. A query with no visible key gets zeros.
  const int32_t* kv_lens = nullptr;
  // Kernel tiling, for benchmarks comparing them: 0 = chosen by seq_kv, 2 = 4 warps
  // of 32 query rows over 64-key blocks, 3 = the same over 32-key blocks.
  int tile = 0;
};

// Throws kpt::Unsupported for dtypes or head dims it has no kernel for.
void flash_attention(const AttentionArgs& args, cudaStream_t stream);

// Floating-point operations of the two products (4 * B * H * Sq * Skv * D, halved if causal
// with Sq == Skv): what TFLOP/s figures count.
double attention_flops(const AttentionArgs& args);

}  // namespace kpt::cuda
