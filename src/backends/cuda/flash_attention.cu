// FlashAttention-2-style forward pass with mma.sync tensor-core instructions (sm_80 and up).
//
// A block of 4 warps owns 128 query rows of one (batch, head); it walks blocks of 32 or 64 keys,
// double-buffered in shared memory with cp.async (K and V in separate copy groups, so Q K^T starts
// while V still arrives). Each warp keeps its score tile (32 rows x keys) and its output
// accumulator (32 rows x D) in registers: S = Q K^T (fp32), online softmax in the exp2 domain, then
// O += P V with P rounded to the input type. Shared-memory tiles are XOR-swizzled in 16-byte chunks
// so ldmatrix reads of 8 rows hit 8 different bank groups.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "backends/cuda/attention.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/flash_attention_common.cuh"
#include "backends/cuda/smem_limit.hpp"

namespace kpt::cuda {

namespace {

using namespace flash;

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4],
                                                  uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Element offset of (row, 16-byte chunk) in a swizzled tile with D columns.
template <int D>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// Copies rows [row0, row0 + ROWS) of a [seq, D] matrix whose rows are `stride` elements apart
// into a swizzled tile; rows at or past `valid` are zero-filled (cp.async with a source size of 0
// reads nothing).
template <typename T, int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(T* tile, const T* src, int64_t row0, int64_t valid,
                                          int64_t stride) {
  constexpr int kChunks = D / 8;
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += THREADS) {
    const int r = idx / kChunks, ch = idx % kChunks;
    const bool ok = row0 + r < valid;
    const T* g = ok ? src + (row0 + r) * stride + ch * 8 : src;
    cp_async16(smem_addr(tile + swz<D>(r, ch)), g, ok ? 16 : 0);
  }
}

// WARPS warps of MT 16-row tiles each, over blocks of kBc keys: a block owns WARPS * MT * 16 query
// rows. MT = 2 lets a warp use each K/V fragment it reads from shared memory twice (Q fragments are
// then re-read from shared memory per k-step, as registers cannot hold both).
template <typename T, int D, bool kCausal, int WARPS, int MT, int kBc>
__global__ void __launch_bounds__(WARPS * 32, 1)
    flash_forward(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                  T* __restrict__ o, int64_t heads, int64_t seq_q, int64_t seq_kv, float scale_log2,
                  const int32_t* __restrict__ kv_lens, HeadStrides qs, HeadStrides ks,
                  HeadStrides vs, HeadStrides os) {
  constexpr int kThreads = WARPS * 32;
  constexpr int kWarpRows = 16 * MT;
  constexpr int kBr = WARPS * kWarpRows;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sq = reinterpret_cast<T*>(smem_raw);
  T* sk = sq + kBr * D;      // 2 stages of kBc x D
  T* sv = sk + 2 * kBc * D;  // 2 stages of kBc x D

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

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int wrow = warp * kWarpRows;  // this warp's first row in the block

  // Two copy groups per key block, K then V, so that S = Q K^T starts while V still arrives.
  load_tile<T, D, kBr, kThreads>(sq, qg, q0, seq_q, qs.seq);
  if (n_blocks > 0) load_tile<T, D, kBc, kThreads>(sk, kg, 0, seq_kv, ks.seq);
  cp_async_commit();
  if (n_blocks > 0) load_tile<T, D, kBc, kThreads>(sv, vg, 0, seq_kv, vs.seq);
  cp_async_commit();

  constexpr int kKSteps = D / 16;   // k-steps of Q K^T
  constexpr int kNTiles = kBc / 8;  // 8-wide score tiles
  constexpr int kDTiles = D / 8;    // 8-wide output tiles
  float acc[MT][kDTiles][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < kDTiles; ++i)
      acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.0f;
  float m_run[MT][2], l_run[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    m_run[mt][0] = m_run[mt][1] = -INFINITY;
    l_run[mt][0] = l_run[mt][1] = 0.0f;
  }

  for (int j = 0; j < n_blocks; ++j) {
    const int stage = j & 1, next = (j + 1) & 1;
    const bool more = j + 1 < n_blocks;
    // Pending: K_j, V_j. K_j is needed now.
    cp_async_wait<1>();
    __syncthreads();
    const int64_t kv0 = static_cast<int64_t>(j) * kBc;
    // A causal block on the diagonal can lie wholly above this warp's rows: nothing to do.
    const bool warp_masked = kCausal && kv0 > q0 + wrow + kWarpRows - 1;
    const T* skt = sk + stage * kBc * D;
    const T* svt = sv + stage * kBc * D;
    // S = Q K^T for this warp's rows and the block's 64 keys.
    float s[MT][kNTiles][4];
    if (!warp_masked) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < kNTiles; ++i)
          s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          const int row = wrow + mt * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
          ldmatrix_x4(smem_addr(sq + swz<D>(row, kk * 2 + lane / 16)), qa[mt]);
        }
#pragma unroll
        for (int np = 0; np < kNTiles / 2; ++np) {
          uint32_t r[4];
          const int key = np * 16 + (lane % 8) + (lane / 16) * 8;
          ldmatrix_x4(smem_addr(skt + swz<D>(key, kk * 2 + (lane / 8) % 2)), r);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_16816<T>(s[mt][2 * np], qa[mt], r[0], r[1]);
            mma_16816<T>(s[mt][2 * np + 1], qa[mt], r[2], r[3]);
          }
        }
      }
    }
    // Every warp is past its last read of K stage `next` (previous iteration): refill it.
    if (more)
      load_tile<T, D, kBc, kThreads>(sk + next * kBc * D, kg, static_cast<int64_t>(j + 1) * kBc,
                                     seq_kv, ks.seq);
    cp_async_commit();  // an empty group when there is nothing to load keeps the counting simple
    if (!warp_masked) {
      // Mask keys past the padding or the causal diagonal (block-relative ints: cheaper in
      // registers than 64-bit positions).
      const bool need_mask = kv0 + kBc > kv_len || (kCausal && kv0 + kBc - 1 > q0 + wrow);
      const int key_limit = static_cast<int>(min(kv_len - kv0, static_cast<int64_t>(kBc)));
      const int diag = static_cast<int>(q0 - kv0);  // key_local > row_local + diag is masked
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (need_mask) {
              const int key = nt * 8 + 2 * t + (e & 1);
              const int row = wrow + mt * 16 + g + (e >= 2 ? 8 : 0);
              if (key >= key_limit || (kCausal && key > row + diag)) s[mt][nt][e] = -INFINITY;
            }
          }
        }

        // Online softmax: each thread holds two rows (g and g + 8) per 16-row tile, shared with
        // its quad.
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float mx = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < kNTiles; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          // Scores stay unscaled; the exp2-domain scale is folded into one FFMA per element.
          const float m_new = fmaxf(m_run[mt][h], mx * scale_log2);
          const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // all masked so far
          const float alpha = fast_exp2(m_run[mt][h] - m_use);
          float sum = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kNTiles; ++nt) {
            s[mt][nt][2 * h] = fast_exp2(fmaf(s[mt][nt][2 * h], scale_log2, -m_use));
            s[mt][nt][2 * h + 1] = fast_exp2(fmaf(s[mt][nt][2 * h + 1], scale_log2, -m_use));
            sum += s[mt][nt][2 * h] + s[mt][nt][2 * h + 1];
          }
          // The partial sum stays per thread; the quad is summed once at the end.
          l_run[mt][h] = l_run[mt][h] * alpha + sum;
          m_run[mt][h] = m_new;
#pragma unroll
          for (int dt = 0; dt < kDTiles; ++dt) {
            acc[mt][dt][2 * h] *= alpha;
            acc[mt][dt][2 * h + 1] *= alpha;
          }
        }
    }
    // Pending: V_j and K_{j+1}. V_j is needed now.
    cp_async_wait<1>();
    __syncthreads();
    if (!warp_masked) {
      // O += P V: the score accumulators become A fragments directly (same thread layout).
#pragma unroll
      for (int kk = 0; kk < kBc / 16; ++kk) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          pa[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          pa[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          pa[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          pa[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < kDTiles / 2; ++dp) {
          uint32_t r[4];
          const int key = kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
          ldmatrix_x4_trans(smem_addr(svt + swz<D>(key, dp * 2 + lane / 16)), r);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_16816<T>(acc[mt][2 * dp], pa[mt], r[0], r[1]);
            mma_16816<T>(acc[mt][2 * dp + 1], pa[mt], r[2], r[3]);
          }
        }
      }
    }
    // Every warp is past its last read of V stage `next` (previous iteration): refill it.
    if (more)
      load_tile<T, D, kBc, kThreads>(sv + next * kBc * D, vg, static_cast<int64_t>(j + 1) * kBc,
                                     seq_kv, vs.seq);
    cp_async_commit();
  }
  cp_async_wait<0>();  // no copy may outlive the block (n_blocks == 0 leaves Q's in flight)

#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = l_run[mt][h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      const int64_t row = q0 + wrow + mt * 16 + g + h * 8;
      if (row < seq_q) {
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          const uint32_t packed = pack2<T>(acc[mt][dt][2 * h] * inv, acc[mt][dt][2 * h + 1] * inv);
          *reinterpret_cast<uint32_t*>(og + row * os.seq + dt * 8 + 2 * t) = packed;
        }
      }
    }
}

void check_operand(const char* what, const void* p, const HeadStrides& s) {
  const bool aligned = reinterpret_cast<uintptr_t>(p) % 16 == 0 && s.batch % 8 == 0 &&
                       s.head % 8 == 0 && s.seq % 8 == 0;
  if (!aligned)
    throw Unsupported(std::string("flash attention: ") + what +
                      " must be 16-byte aligned with strides that are multiples of 8 elements");
}

template <typename T, int D, bool kCausal, int WARPS, int MT, int kBc>
void launch(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int kBr = WARPS * MT * 16;
  auto* kernel = flash_forward<T, D, kCausal, WARPS, MT, kBc>;
  const int smem = (kBr * D + 4 * kBc * D) * static_cast<int>(sizeof(T));
  ensure_dynamic_smem<flash_forward<T, D, kCausal, WARPS, MT, kBc>>(smem);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(D));
  const dim3 grid(static_cast<unsigned>((a.seq_q + kBr - 1) / kBr),
                  static_cast<unsigned>(a.batch * a.heads));
  kernel<<<grid, WARPS * 32, smem, stream>>>(
      static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v),
      static_cast<T*>(a.o), a.heads, a.seq_q, a.seq_kv, scale * 1.4426950408889634f, a.kv_lens,
      resolved(a.q_strides, a.heads, a.seq_q, D), resolved(a.k_strides, a.heads, a.seq_kv, D),
      resolved(a.v_strides, a.heads, a.seq_kv, D), resolved(a.o_strides, a.heads, a.seq_q, D));
  KPT_CUDA_CHECK_LAUNCH();
}

template <typename T, int D, bool kCausal>
void launch_tiles(const AttentionArgs& a, cudaStream_t stream) {
  // 4 warps of 32 query rows; keys in blocks of 64 (tile 2) or 32 (tile 3). Measured on an
  // H200 (docs/GPU.md): 64-key blocks are faster at long sequences (286 vs 264 TFLOP/s at 4096,
  // D 128, although 64 makes the compiler spill a few registers there and 32 does not), 32-key
  // blocks at short ones (92 vs 83 at 128: less work wasted on padding keys, fewer idle blocks).
  const int tile = a.tile != 0 ? a.tile : (a.seq_kv <= 256 ? 3 : 2);
  if (tile == 3) {
    launch<T, D, kCausal, 4, 2, 32>(a, stream);
  } else {
    launch<T, D, kCausal, 4, 2, 64>(a, stream);
  }
}

template <typename T>
void launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim == 64) {
    a.causal ? launch_tiles<T, 64, true>(a, stream) : launch_tiles<T, 64, false>(a, stream);
  } else {
    a.causal ? launch_tiles<T, 128, true>(a, stream) : launch_tiles<T, 128, false>(a, stream);
  }
}

}  // namespace

void flash_attention(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim != 64 && a.head_dim != 128)
    throw Unsupported("flash attention: head dim " + std::to_string(a.head_dim) +
                      " (kernels exist for 64 and 128)");
  if (a.batch <= 0 || a.heads <= 0 || a.seq_q <= 0) return;
  if (a.seq_kv <= 0) throw Error("flash attention: no keys");
  if (a.batch * a.heads > 65535) throw Unsupported("flash attention: batch * heads > 65535");
  check_operand("Q", a.q, a.q_strides);
  check_operand("K", a.k, a.k_strides);
  check_operand("V", a.v, a.v_strides);
  check_operand("O", a.o, a.o_strides);
  if (a.dtype != DType::F16 && a.dtype != DType::BF16)
    throw Unsupported("flash attention: f16 or bf16 only, not " + std::string(dtype_name(a.dtype)));
  const bool wgmma = a.tile == kTileWgmma || a.tile == kTileWgmmaPingpong ||
                     a.tile == kTileWgmma64 || a.tile == kTileWgmmaPersistent ||
                     a.tile == kTileWgmma64Persistent;
  if (a.tile != 0 && a.tile != 2 && a.tile != 3 && !wgmma)
    throw Error("flash attention: tile " + std::to_string(a.tile) + " (expected 0, 2, 3 or " +
                std::to_string(kTileWgmma) + " to " + std::to_string(kTileWgmma64Persistent) + ")");
  // The wgmma kernel runs on compute capability 9.0 only (sm_90a code has no successor).
  const DeviceProps& dev = current_device();
  const bool hopper = dev.major == 9 && dev.minor == 0;
  if (wgmma && !hopper)
    throw Unsupported("flash attention: tile " + std::to_string(a.tile) +
                      " (wgmma) needs compute capability 9.0, not " + std::to_string(dev.major) +
                      "." + std::to_string(dev.minor));
  if (wgmma || (a.tile == 0 && hopper)) {
    int tile = a.tile;
    if (tile == 0) {
      // By the H200 figures in docs/GPU.md: 64-row blocks at head dim 64 (2 blocks per
      // multiprocessor hide each other's softmax: 473 vs 403 TFLOP/s at seq 4096, 0.0183 vs
      // 0.0208 ms at BERT's shape) and wherever 128-row blocks would leave multiprocessors idle
      // (GPT-2 prefill: 0.0122 vs 0.0151 ms); 128-row blocks otherwise.
      const int64_t blocks = (a.seq_q + 127) / 128 * a.batch * a.heads;
      tile = a.head_dim == 64 || blocks < dev.multiprocessors ? kTileWgmma64 : kTileWgmma;
      // Short keys and many 64-row blocks (BERT's batch 32 at seq 128: 0.0166 vs 0.0187 ms,
      // and 0.0180 vs 0.0197 in an earlier call): persistent blocks pay the per-block setup
      // once per multiprocessor, which is most of a block's work when keys are few. At seq 512
      // and beyond the two were even or the plain blocks ahead.
      const int64_t blocks64 = (a.seq_q + 63) / 64 * a.batch * a.heads;
      if (tile == kTileWgmma64 && a.seq_kv <= 256 && blocks64 > 2 * dev.multiprocessors)
        tile = kTileWgmma64Persistent;
    }
    using flash::Sm90Kernel;
    const Sm90Kernel kind = tile == kTileWgmma64             ? Sm90Kernel::Rows64
                            : tile == kTileWgmmaPingpong     ? Sm90Kernel::Rows128Pingpong
                            : tile == kTileWgmmaPersistent   ? Sm90Kernel::Rows128Persistent
                            : tile == kTileWgmma64Persistent ? Sm90Kernel::Rows64Persistent
                                                             : Sm90Kernel::Rows128;
    flash::flash_attention_sm90(a, kind, stream);
  } else if (a.dtype == DType::F16) {
    launch_typed<__half>(a, stream);
  } else {
    launch_typed<__nv_bfloat16>(a, stream);
  }
}

double attention_flops(const AttentionArgs& a) {
  double f = 4.0 * static_cast<double>(a.batch) * static_cast<double>(a.heads) *
             static_cast<double>(a.seq_q) * static_cast<double>(a.seq_kv) *
             static_cast<double>(a.head_dim);
  if (a.causal && a.seq_q == a.seq_kv) f /= 2;
  return f;
}

}  // namespace kpt::cuda
