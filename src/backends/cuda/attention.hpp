#pragma once
// Scaled dot-product attention on the GPU, flash-style: one pass over K and V per block of
// queries with an online softmax, so the [seq_q, seq_kv] score matrix never reaches device
// memory. Tensor-core kernels for f16 and bf16 with head dims 64 and 128: wgmma on Hopper
// (compute capability 9.0), mma.sync elsewhere.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

// Element strides of one operand's batch, head and sequence position (head_dim is contiguous).
// All zero: contiguous [batch, heads, seq, head_dim]. {seq * heads * D, D, heads * D} reads
// [batch, seq, heads, head_dim], a projection's output split into heads by a reshape alone, so
// the usual head transposes before and after attention need not run.
struct HeadStrides {
  int64_t batch = 0, head = 0, seq = 0;
  static HeadStrides seq_major(int64_t heads, int64_t seq, int64_t head_dim) {
    return {seq * heads * head_dim, head_dim, heads * head_dim};
  }
};

constexpr int kTileWgmma = 4;
constexpr int kTileWgmmaPingpong = 5;
constexpr int kTileWgmma64 = 6;
constexpr int kTileWgmmaPersistent = 7;
constexpr int kTileWgmma64Persistent = 8;

struct AttentionArgs {
  DType dtype = DType::F16;  // F16 or BF16 (Q, K, V and O)
  int64_t batch = 0, heads = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  // Laid out as the strides below say (multiples of 8 elements, 16-byte aligned pointers).
  HeadStrides q_strides, k_strides, v_strides, o_strides;
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
  // Kernel, for tests and benchmarks comparing them: 0 = chosen by the device and seq_kv;
  // mma.sync (sm_80 and up): 2 = 4 warps of 32 query rows over 64-key blocks, 3 = the same over
  // 32-key blocks; compute capability 9.0 only: kTileWgmma = wgmma, a TMA producer warpgroup and
  // 2 consumer warpgroups of 64 query rows over 128-key blocks (the default there),
  // kTileWgmmaPingpong = that with the consumers taking turns to issue their products,
  // kTileWgmma64 = 1 consumer warpgroup, 64-row blocks (the default there when 128-row blocks
  // would not fill the GPU); kTileWgmmaPersistent, kTileWgmma64Persistent = tiles 4 and 6 with
  // only as many blocks as fit on the GPU at once, each taking several query blocks in turn.
  int tile = 0;
};

// Throws kpt::Unsupported for dtypes or head dims it has no kernel for.
void flash_attention(const AttentionArgs& args, cudaStream_t stream);

// Floating-point operations of the two products (4 * B * H * Sq * Skv * D, halved if causal
// with Sq == Skv): what TFLOP/s figures count.
double attention_flops(const AttentionArgs& args);

}  // namespace kpt::cuda
