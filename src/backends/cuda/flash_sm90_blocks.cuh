#pragma once
// The steps of the sm_90a flash attention kernel (flash_attention_sm90.cu) on one warpgroup's 64
// query rows and one block of 128 keys, in wgmma's register layouts. Tiles in shared memory are
// SW128 (wgmma.cuh): Q [64 or 128 rows, D], K and V [128 keys, D].
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/flash_attention_common.cuh"
#include "backends/cuda/wgmma.cuh"

namespace kpt::cuda::flash {

constexpr int kBc = 128;  // keys per block

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Per-thread view of one warpgroup's 64 x 128 score tile (wgmma accumulator layout): element i
// is row g (+8 when i % 4 >= 2) of the thread's warp, key (i / 4) * 8 + 2t (+1 for odd i).
// Sets keys past the padding or the causal diagonal to -inf.
template <bool kCausal>
__device__ __forceinline__ void mask_scores(float (&s)[kBc / 2], int64_t kv0, int64_t kv_len,
                                            int64_t q0, int wrow, int g, int t) {
  const bool need_mask = kv0 + kBc > kv_len || (kCausal && kv0 + kBc - 1 > q0 + wrow);
  if (!need_mask) return;
  const int key_limit = static_cast<int>(min(kv_len - kv0, static_cast<int64_t>(kBc)));
  const int diag = static_cast<int>(q0 - kv0);  // key_local > row_local + diag is masked
#pragma unroll
  for (int i = 0; i < kBc / 2; ++i) {
    const int key = (i / 4) * 8 + 2 * t + (i & 1);
    const int row = wrow + g + ((i & 2) ? 8 : 0);
    if (key >= key_limit || (kCausal && key > row + diag)) s[i] = -INFINITY;
  }
}

// Online softmax over one score tile in the exp2 domain: s becomes exp2(s * scale - m) in place,
// the running max and (per-thread partial) sum advance, and alpha[h] is the factor by which the
// output rows of half h (row g, row g + 8) must shrink.
__device__ __forceinline__ void softmax_step(float (&s)[kBc / 2], float (&m_run)[2],
                                             float (&l_run)[2], float (&alpha)[2],
                                             float scale_log2) {
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float mx = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt)
      mx = fmaxf(mx, fmaxf(s[nt * 4 + 2 * hh], s[nt * 4 + 2 * hh + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m_run[hh], mx * scale_log2);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // all masked so far
    alpha[hh] = fast_exp2(m_run[hh] - m_use);
    float sum = 0.0f;
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt) {
      float& s0 = s[nt * 4 + 2 * hh];
      float& s1 = s[nt * 4 + 2 * hh + 1];
      s0 = fast_exp2(fmaf(s0, scale_log2, -m_use));
      s1 = fast_exp2(fmaf(s1, scale_log2, -m_use));
      sum += s0 + s1;
    }
    l_run[hh] = l_run[hh] * alpha[hh] + sum;  // per thread; the quad is summed at the end
    m_run[hh] = m_new;
  }
}

template <int D>
__device__ __forceinline__ void rescale(float (&acc)[D / 2], const float (&alpha)[2]) {
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    acc[dt * 4 + 0] *= alpha[0];
    acc[dt * 4 + 1] *= alpha[0];
    acc[dt * 4 + 2] *= alpha[1];
    acc[dt * 4 + 3] *= alpha[1];
  }
}

// P as wgmma A fragments: k-step kk covers keys 16 kk .. 16 kk + 15 (8-key tiles 2 kk, 2 kk + 1).
template <typename T>
__device__ __forceinline__ void pack_p(const float (&s)[kBc / 2], uint32_t (&p)[kBc / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < kBc / 16; ++kk) {
    p[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
    p[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
    p[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
    p[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

// wgmma.fence, with the output accumulators and P pinned before it: their last updates (rescale,
// packing) cannot sink past the fence, where ptxas would have to add a fence of its own.
template <int D>
__device__ __forceinline__ void fence_operands(float (&acc)[D / 2], uint32_t (&p)[kBc / 16][4]) {
  sm90::fence_registers(acc);
#pragma unroll
  for (int kk = 0; kk < kBc / 16; ++kk)
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(p[kk][i])::"memory");
  sm90::wgmma_fence();
}

// Issues S = Q K^T for this warpgroup's 64 rows (Q tile of kRowsQ rows at sq, K tile at skt),
// uncommitted.
template <typename T, int D, int kRowsQ>
__device__ __forceinline__ void issue_qk(float (&s)[kBc / 2], uint32_t sq, uint32_t skt,
                                         int wg_row) {
  using namespace sm90;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint64_t da =
        sw128_desc(sq + (kk / 4) * (kRowsQ * 128) + wg_row * 128 + (kk % 4) * 32, 16, 1024);
    const uint64_t db = sw128_desc(skt + (kk / 4) * (kBc * 128) + (kk % 4) * 32, 16, 1024);
    wgmma_ss<kBc, T>(s, da, db, kk > 0);
  }
}

// Issues O += P V (V tile at svt, N-major: 64-column panels kBc * 128 bytes apart), uncommitted.
template <typename T, int D>
__device__ __forceinline__ void issue_pv(float (&acc)[D / 2], const uint32_t (&p)[kBc / 16][4],
                                         uint32_t svt) {
  using namespace sm90;
#pragma unroll
  for (int kk = 0; kk < kBc / 16; ++kk)
    wgmma_rs<D, T>(acc, p[kk], sw128_desc(svt + kk * 16 * 128, kBc * 128, 1024), 1);
}

// Divides by the row sums and writes this thread's output elements (rows past seq_q skipped).
template <typename T, int D>
__device__ __forceinline__ void store_output(const float (&acc)[D / 2], const float (&l_run)[2],
                                             T* og, int64_t row0, int64_t seq_q, int64_t stride,
                                             int t) {
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float l = l_run[hh];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const int64_t row = row0 + hh * 8;
    if (row < seq_q) {
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const uint32_t packed =
            pack2<T>(acc[dt * 4 + 2 * hh] * inv, acc[dt * 4 + 2 * hh + 1] * inv);
        *reinterpret_cast<uint32_t*>(og + row * stride + dt * 8 + 2 * t) = packed;
      }
    }
  }
}
#endif

}  // namespace kpt::cuda::flash
