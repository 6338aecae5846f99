#pragma once
// Flash-style float32 attention for the ONNX Attention op: the scores of one block of queries
// against one block of keys live in a small per-thread buffer, and an online softmax rescales
// the running output as each key block arrives, so the Sq x Skv score matrix never exists.
#include <cstdint>

namespace kpt::cpu {

// One attention problem over strided views; the last (head-size) axis of Q, K, V and Y is
// contiguous. Strides are in elements. Q is [B, Hq, Sq, D], K [B, Hkv, L, D], V
// [B, Hkv, L, Dv], Y [B, Hq, Sq, Dv]; query head h reads kv head h / (Hq / Hkv).
struct AttentionProblem {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head = 0, v_head = 0;
  const float* q = nullptr;
  int64_t q_sb = 0, q_sh = 0, q_ss = 0;
  const float* k = nullptr;
  int64_t k_sb = 0, k_sh = 0, k_ss = 0;
  const float* v = nullptr;
  int64_t v_sb = 0, v_sh = 0, v_ss = 0;
  float* y = nullptr;
  int64_t y_sb = 0, y_sh = 0, y_ss = 0;
  float scale = 1.0f;
  // Query i may attend key j only when j <= i (no past keys).
  bool causal = false;
  // Optional mask, bool (nonzero: may attend) or float (added to the scores), read at
  // mask + b*m_sb + h*m_sh + i*m_si + j*m_sj (broadcast axes have stride 0). Keys at or beyond
  // mask_width are masked (opset 24 pads a short mask).
  const void* mask = nullptr;
  bool mask_is_bool = false;
  int64_t m_sb = 0, m_sh = 0, m_si = 0, m_sj = 0, mask_width = 0;
};

// Computes Y. A query row whose every key is masked gets zeros, as the reference kernel does.
// Uses AVX-512 when the CPU has it, else a portable path; parallel over batch x head x query
// block with OpenMP.
void flash_attention(const AttentionProblem& p);
// The portable path alone (for tests on AVX-512 machines).
void flash_attention_portable(const AttentionProblem& p);

}  // namespace kpt::cpu
