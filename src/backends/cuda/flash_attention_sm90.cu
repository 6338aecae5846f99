// Flash attention forward for Hopper (sm_90a) with warpgroup MMA (wgmma).
//
// A block of 2 warpgroups (256 threads) owns 128 query rows of one (batch, head), 64 per
// warpgroup; it walks blocks of 128 keys, double-buffered in shared memory with cp.async (K and
// V in separate copy groups, so S = Q K^T starts while V still arrives). Tiles are stored in the
// hardware's 128-byte swizzle (wgmma.cuh), so wgmma reads Q and K (K-major) and V (N-major,
// transpose bit) straight from shared memory. S (64 x 128 per warpgroup, f32) lands in
// registers; the online softmax runs there in the exp2 domain; P, rounded to the input type, is
// the A operand of O += P V from registers (the accumulator layout of S is wgmma's register
// A layout). The two warpgroups interleave: one's softmax overlaps the other's products.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/flash_attention_common.cuh"
#include "backends/cuda/smem_limit.hpp"
#include "backends/cuda/wgmma.cuh"

namespace kpt::cuda::flash {

namespace {

constexpr int kThreads = 256;  // 2 warpgroups
constexpr int kBr = 128;       // query rows per block, 64 per warpgroup
constexpr int kBc = 128;       // keys per block

template <int D>
constexpr int smem_bytes() {
  // Q, 2 stages of K, 2 of V, 16-bit; plus slack to align the base to 1024 bytes.
  return (kBr * D + 4 * kBc * D) * 2 + 1024;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Copies rows [row0, row0 + ROWS) of a [seq, D] matrix whose rows are `stride` elements apart
// into a SW128 tile; rows at or past `valid` are zero-filled.
template <typename T, int D, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t tile, const T* src, int64_t row0, int64_t valid,
                                          int64_t stride) {
  constexpr int kChunks = D / 8;
  static_assert(ROWS * kChunks % kThreads == 0);
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / kThreads; ++it) {
    const int idx = threadIdx.x + it * kThreads;
    const int r = idx / kChunks, ch = idx % kChunks;
    const bool ok = row0 + r < valid;
    const T* g = ok ? src + (row0 + r) * stride + ch * 8 : src;
    cp_async16(tile + sm90::sw128_offset(ROWS, r, ch), g, ok ? 16 : 0);
  }
}
#endif

template <typename T, int D, bool kCausal>
__global__ void __launch_bounds__(kThreads, 1)
    flash_forward_sm90(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                       T* __restrict__ o, int64_t heads, int64_t seq_q, int64_t seq_kv,
                       float scale_log2, const int32_t* __restrict__ kv_lens, HeadStrides qs,
                       HeadStrides ks, HeadStrides vs, HeadStrides os) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace sm90;
  constexpr int kTileQ = kBr * D * 2, kTileKV = kBc * D * 2;  // bytes
  constexpr int kPanelQ = kBr * 128, kPanelKV = kBc * 128;    // bytes per 64-column panel
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sq = base;
  const uint32_t sk = sq + kTileQ;       // 2 stages
  const uint32_t sv = sk + 2 * kTileKV;  // 2 stages

  // Causal blocks with more queries see more keys: start those first.
  const int qb = kCausal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / heads, h = bh % heads;
  const int64_t q0 = static_cast<int64_t>(qb) * kBr;
  const T* qg = q + b * qs.batch + h * qs.head;
  const T* kg = k + b * ks.batch + h * ks.head;
  const T* vg = v + b * vs.batch + h * vs.head;
  T* og = o + b * os.batch + h * os.head;

  int64_t kv_len = seq_kv;
  if (kv_lens) kv_len = min(kv_len, static_cast<int64_t>(max(kv_lens[b], 0)));
  int64_t kv_end = kv_len;
  if (kCausal) kv_end = min(kv_end, q0 + kBr);
  const int n_blocks = static_cast<int>((max(kv_end, int64_t{0}) + kBc - 1) / kBc);

  const int wg = threadIdx.x / 128;
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wg_row = wg * 64;                               // warpgroup's first row in the block
  const int wrow = wg_row + ((threadIdx.x / 32) % 4) * 16;  // warp's first row

  load_tile<T, D, kBr>(sq, qg, q0, seq_q, qs.seq);
  if (n_blocks > 0) load_tile<T, D, kBc>(sk, kg, 0, seq_kv, ks.seq);
  cp_async_commit();
  if (n_blocks > 0) load_tile<T, D, kBc>(sv, vg, 0, seq_kv, vs.seq);
  cp_async_commit();

  float acc[D / 2];  // O: 64 x D per warpgroup, wgmma accumulator layout
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_blocks; ++j) {
    const int stage = j & 1, next = (j + 1) & 1;
    const bool more = j + 1 < n_blocks;
    // Pending: K_j, V_j. K_j is needed now.
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    // Every warpgroup finished its products on stage `next` (previous iteration): refill K.
    if (more)
      load_tile<T, D, kBc>(sk + next * kTileKV, kg, static_cast<int64_t>(j + 1) * kBc, seq_kv,
                           ks.seq);
    cp_async_commit();  // an empty group when there is nothing to load keeps the counting simple

    const int64_t kv0 = static_cast<int64_t>(j) * kBc;
    // A causal block on the diagonal can lie wholly above this warpgroup's rows.
    const bool wg_masked = kCausal && kv0 > q0 + wg_row + 63;
    float s[kBc / 2];
    uint32_t p[kBc / 16][4];
    if (!wg_masked) {
      const uint32_t skt = sk + stage * kTileKV;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint64_t da =
            sw128_desc(sq + (kk / 4) * kPanelQ + wg_row * 128 + (kk % 4) * 32, 16, 1024);
        const uint64_t db = sw128_desc(skt + (kk / 4) * kPanelKV + (kk % 4) * 32, 16, 1024);
        wgmma_ss<kBc, T>(s, da, db, kk > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);

      // Mask keys past the padding or the causal diagonal. Element i of s: 8-key tile i / 4,
      // row g (+8 for i % 4 >= 2), key 2t (+1 for odd i).
      const bool need_mask = kv0 + kBc > kv_len || (kCausal && kv0 + kBc - 1 > q0 + wrow);
      if (need_mask) {
        const int key_limit = static_cast<int>(min(kv_len - kv0, static_cast<int64_t>(kBc)));
        const int diag = static_cast<int>(q0 - kv0);  // key_local > row_local + diag is masked
#pragma unroll
        for (int i = 0; i < kBc / 2; ++i) {
          const int key = (i / 4) * 8 + 2 * t + (i & 1);
          const int row = wrow + g + ((i & 2) ? 8 : 0);
          if (key >= key_limit || (kCausal && key > row + diag)) s[i] = -INFINITY;
        }
      }

      // Online softmax: each thread holds rows g and g + 8 of its warp, shared with its quad.
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
        const float alpha = fast_exp2(m_run[hh] - m_use);
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kBc / 8; ++nt) {
          float& s0 = s[nt * 4 + 2 * hh];
          float& s1 = s[nt * 4 + 2 * hh + 1];
          s0 = fast_exp2(fmaf(s0, scale_log2, -m_use));
          s1 = fast_exp2(fmaf(s1, scale_log2, -m_use));
          sum += s0 + s1;
        }
        l_run[hh] = l_run[hh] * alpha + sum;  // per thread; the quad is summed at the end
        m_run[hh] = m_new;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          acc[dt * 4 + 2 * hh] *= alpha;
          acc[dt * 4 + 2 * hh + 1] *= alpha;
        }
      }
      // P as A fragments: k-step kk covers keys 16 kk .. 16 kk + 15 (8-key tiles 2 kk, 2 kk + 1).
#pragma unroll
      for (int kk = 0; kk < kBc / 16; ++kk) {
        p[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
        p[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
        p[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
        p[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
      }
    }

    // Pending: V_j and K_{j+1}. V_j is needed now.
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    if (more)
      load_tile<T, D, kBc>(sv + next * kTileKV, vg, static_cast<int64_t>(j + 1) * kBc, seq_kv,
                           vs.seq);
    cp_async_commit();
    if (!wg_masked) {
      const uint32_t svt = sv + stage * kTileKV;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBc / 16; ++kk)
        wgmma_rs<D, T>(acc, p[kk], sw128_desc(svt + kk * 16 * 128, kPanelKV, 1024), 1);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc);
    }
  }
  cp_async_wait<0>();  // no copy may outlive the block (n_blocks == 0 leaves Q's in flight)

#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float l = l_run[hh];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const int64_t row = q0 + wrow + g + hh * 8;
    if (row < seq_q) {
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const uint32_t packed =
            pack2<T>(acc[dt * 4 + 2 * hh] * inv, acc[dt * 4 + 2 * hh + 1] * inv);
        *reinterpret_cast<uint32_t*>(og + row * os.seq + dt * 8 + 2 * t) = packed;
      }
    }
  }
#endif
}

template <typename T, int D, bool kCausal>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  auto* kernel = flash_forward_sm90<T, D, kCausal>;
  constexpr int smem = smem_bytes<D>();
  ensure_dynamic_smem<flash_forward_sm90<T, D, kCausal>>(smem);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(D));
  const dim3 grid(static_cast<unsigned>((a.seq_q + kBr - 1) / kBr),
                  static_cast<unsigned>(a.batch * a.heads));
  kernel<<<grid, kThreads, smem, stream>>>(
      static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v),
      static_cast<T*>(a.o), a.heads, a.seq_q, a.seq_kv, scale * 1.4426950408889634f, a.kv_lens,
      resolved(a.q_strides, a.heads, a.seq_q, D), resolved(a.k_strides, a.heads, a.seq_kv, D),
      resolved(a.v_strides, a.heads, a.seq_kv, D), resolved(a.o_strides, a.heads, a.seq_q, D));
  KPT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim == 64) {
    a.causal ? launch<T, 64, true>(a, stream) : launch<T, 64, false>(a, stream);
  } else {
    a.causal ? launch<T, 128, true>(a, stream) : launch<T, 128, false>(a, stream);
  }
}

}  // namespace

void flash_attention_sm90(const AttentionArgs& a, cudaStream_t stream) {
  if (a.dtype == DType::F16) {
    launch_typed<__half>(a, stream);
  } else {
    launch_typed<__nv_bfloat16>(a, stream);
  }
}

}  // namespace kpt::cuda::flash
