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
#include "backends/cuda/flash_sm90_blocks.cuh"
#include "backends/cuda/smem_limit.hpp"
#include "backends/cuda/wgmma.cuh"

namespace kpt::cuda::flash {

namespace {

constexpr int kThreads = 256;  // 2 warpgroups

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

// Arguments of both kernels.
template <typename T>
struct Params {
  const T* q;
  const T* k;
  const T* v;
  T* o;
  int64_t heads, seq_q, seq_kv;
  float scale_log2;
  const int32_t* kv_lens;
  HeadStrides qs, ks, vs, os;
};

// kOverlap false: per key block, S = Q K^T, softmax, O += P V, each waited for in turn (the two
// warpgroups overlap each other). kOverlap true (FlashAttention-3's intra-warpgroup overlap):
// S_j = Q K_j^T and O += P_{j-1} V_{j-1} are issued together, and the softmax of S_j runs while
// the tensor cores still multiply P_{j-1} V_{j-1}.
template <typename T, int D, bool kCausal, bool kOverlap>
__global__ void __launch_bounds__(kThreads, 1)
    flash_forward_sm90(const __grid_constant__ Params<T> a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace sm90;
  // Blocks of queries and keys are the same size and aligned, so no key block lies wholly above
  // a warpgroup's rows under the causal mask: every warpgroup works on every block.
  static_assert(kBr == kBc);
  constexpr int kTileQ = kBr * D * 2, kTileKV = kBc * D * 2;  // bytes
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sq = base;
  const uint32_t sk = sq + kTileQ;       // 2 stages
  const uint32_t sv = sk + 2 * kTileKV;  // 2 stages

  // Causal blocks with more queries see more keys: start those first.
  const int qb = kCausal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / a.heads, h = bh % a.heads;
  const int64_t q0 = static_cast<int64_t>(qb) * kBr;
  const T* qg = a.q + b * a.qs.batch + h * a.qs.head;
  const T* kg = a.k + b * a.ks.batch + h * a.ks.head;
  const T* vg = a.v + b * a.vs.batch + h * a.vs.head;
  T* og = a.o + b * a.os.batch + h * a.os.head;

  int64_t kv_len = a.seq_kv;
  if (a.kv_lens) kv_len = min(kv_len, static_cast<int64_t>(max(a.kv_lens[b], 0)));
  int64_t kv_end = kv_len;
  if (kCausal) kv_end = min(kv_end, q0 + kBr);
  const int n_blocks = static_cast<int>((max(kv_end, int64_t{0}) + kBc - 1) / kBc);

  const int wg = threadIdx.x / 128;
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wg_row = wg * 64;                               // warpgroup's first row in the block
  const int wrow = wg_row + ((threadIdx.x / 32) % 4) * 16;  // warp's first row
  auto load_k = [&](int j) {
    load_tile<T, D, kBc>(sk + (j & 1) * kTileKV, kg, static_cast<int64_t>(j) * kBc, a.seq_kv,
                         a.ks.seq);
  };
  auto load_v = [&](int j) {
    load_tile<T, D, kBc>(sv + (j & 1) * kTileKV, vg, static_cast<int64_t>(j) * kBc, a.seq_kv,
                         a.vs.seq);
  };

  float acc[D / 2];  // O: 64 x D per warpgroup, wgmma accumulator layout
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f}, alpha[2];
  float s[kBc / 2];
  uint32_t p[kBc / 16][4];

  load_tile<T, D, kBr>(sq, qg, q0, a.seq_q, a.qs.seq);
  if (n_blocks > 0) load_k(0);
  cp_async_commit();
  if (n_blocks > 0) load_v(0);
  cp_async_commit();

  if constexpr (!kOverlap) {
    for (int j = 0; j < n_blocks; ++j) {
      // Pending: K_j, V_j. K_j is needed now.
      cp_async_wait<1>();
      fence_proxy_async();
      __syncthreads();
      // Both warpgroups finished their products on the other stage (previous iteration).
      if (j + 1 < n_blocks) load_k(j + 1);
      cp_async_commit();  // an empty group when there is nothing to load keeps the counting
      fence_operands<D>(acc, p);
      issue_qk<T, D>(s, sq, sk + (j & 1) * kTileKV, wg_row);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);
      const int64_t kv0 = static_cast<int64_t>(j) * kBc;
      mask_scores<kCausal>(s, kv0, kv_len, q0, wrow, g, t);
      softmax_step(s, m_run, l_run, alpha, a.scale_log2);
      rescale<D>(acc, alpha);
      pack_p<T>(s, p);
      // Pending: V_j and K_{j+1}. V_j is needed now.
      cp_async_wait<1>();
      fence_proxy_async();
      __syncthreads();
      if (j + 1 < n_blocks) load_v(j + 1);
      cp_async_commit();
      fence_operands<D>(acc, p);
      issue_pv<T, D>(acc, p, sv + (j & 1) * kTileKV);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc);
    }
  } else if (n_blocks > 0) {
    // Block 0: S_0 and its softmax (O is still zero: nothing to rescale).
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    if (n_blocks > 1) load_k(1);
    cp_async_commit();
    fence_operands<D>(acc, p);
    issue_qk<T, D>(s, sq, sk, wg_row);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);
    mask_scores<kCausal>(s, 0, kv_len, q0, wrow, g, t);
    softmax_step(s, m_run, l_run, alpha, a.scale_log2);
    pack_p<T>(s, p);
    for (int j = 1; j < n_blocks; ++j) {
      // K_j and V_{j-1} are needed now; both warpgroups are done with K_{j-1} and V_{j-2}.
      cp_async_wait<0>();
      fence_proxy_async();
      __syncthreads();
      if (j + 1 < n_blocks) load_k(j + 1);
      load_v(j);
      cp_async_commit();
      fence_operands<D>(acc, p);
      issue_qk<T, D>(s, sq, sk + (j & 1) * kTileKV, wg_row);
      wgmma_commit();
      issue_pv<T, D>(acc, p, sv + ((j - 1) & 1) * kTileKV);
      wgmma_commit();
      wgmma_wait<1>();  // S_j is ready; P_{j-1} V_{j-1} may still run
      fence_registers(s);
      mask_scores<kCausal>(s, static_cast<int64_t>(j) * kBc, kv_len, q0, wrow, g, t);
      softmax_step(s, m_run, l_run, alpha, a.scale_log2);
      wgmma_wait<0>();
      fence_registers(acc);
      rescale<D>(acc, alpha);
      pack_p<T>(s, p);
    }
    // The last block's P V.
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
    fence_operands<D>(acc, p);
    issue_pv<T, D>(acc, p, sv + ((n_blocks - 1) & 1) * kTileKV);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(acc);
  }
  cp_async_wait<0>();  // no copy may outlive the block (n_blocks == 0 leaves Q's in flight)
  store_output<T, D>(acc, l_run, og, q0 + wrow + g, a.seq_q, a.os.seq, t);
#endif
}

template <typename T, int D, bool kCausal, bool kOverlap>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int smem = smem_bytes<D>();
  ensure_dynamic_smem<flash_forward_sm90<T, D, kCausal, kOverlap>>(smem);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(D));
  const dim3 grid(static_cast<unsigned>((a.seq_q + kBr - 1) / kBr),
                  static_cast<unsigned>(a.batch * a.heads));
  const Params<T> p{static_cast<const T*>(a.q),
                    static_cast<const T*>(a.k),
                    static_cast<const T*>(a.v),
                    static_cast<T*>(a.o),
                    a.heads,
                    a.seq_q,
                    a.seq_kv,
                    scale * 1.4426950408889634f,
                    a.kv_lens,
                    resolved(a.q_strides, a.heads, a.seq_q, D),
                    resolved(a.k_strides, a.heads, a.seq_kv, D),
                    resolved(a.v_strides, a.heads, a.seq_kv, D),
                    resolved(a.o_strides, a.heads, a.seq_q, D)};
  flash_forward_sm90<T, D, kCausal, kOverlap><<<grid, kThreads, smem, stream>>>(p);
  KPT_CUDA_CHECK_LAUNCH();
}

template <typename T, bool kOverlap>
void launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim == 64) {
    a.causal ? launch<T, 64, true, kOverlap>(a, stream) : launch<T, 64, false, kOverlap>(a, stream);
  } else {
    a.causal ? launch<T, 128, true, kOverlap>(a, stream)
             : launch<T, 128, false, kOverlap>(a, stream);
  }
}

}  // namespace

void flash_attention_sm90(const AttentionArgs& a, bool overlap, cudaStream_t stream) {
  if (a.dtype == DType::F16) {
    overlap ? launch_typed<__half, true>(a, stream) : launch_typed<__half, false>(a, stream);
  } else {
    overlap ? launch_typed<__nv_bfloat16, true>(a, stream)
            : launch_typed<__nv_bfloat16, false>(a, stream);
  }
}

}  // namespace kpt::cuda::flash
