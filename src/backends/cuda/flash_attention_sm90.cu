// Flash attention forward for Hopper (sm_90a), warp-specialized: FlashAttention-3's structure.
//
// A block of 3 warpgroups owns 128 query rows of one (batch, head). Warpgroup 0 is the producer:
// one thread issues TMA copies of Q once and of K and V blocks of 128 keys into a 2-stage ring,
// each completing on its own "full" mbarrier; it refills a stage when the consumers' "empty"
// mbarrier says they are done with it. Warpgroups 1 and 2 (64 query rows each) wait only on
// barriers, never on each other: S = Q K^T and O += P V with wgmma from shared memory, the
// softmax of key block j overlapping the P V product of block j - 1 (flash_sm90_blocks.cuh).
// Registers move from the producer to the consumers with setmaxnreg. TMA writes the tiles in the
// 128-byte swizzle wgmma reads, zero-fills rows past the sequence and follows any strides, so
// seq-major operands need nothing special. Variants: the consumers taking turns to issue their
// products (pingpong), and one consumer warpgroup over 64-row blocks for grids too small to fill
// the GPU.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/flash_attention_common.cuh"
#include "backends/cuda/flash_sm90_blocks.cuh"
#include "backends/cuda/smem_limit.hpp"
#include "backends/cuda/tma.cuh"
#include "backends/cuda/wgmma.cuh"

namespace kpt::cuda::flash {

namespace {

constexpr int kStages = 2;  // K and V ring depth

// Positions (1..3) of an operand's seq, head and batch dimensions in its tensor map (dimension
// 0 is the head dim); the map orders them by stride.
struct MapDims {
  int seq = 1, head = 2, batch = 3;
};

template <typename T>
struct Params {
  CUtensorMap q_map, k_map, v_map;
  MapDims qd, kd, vd;
  T* o;
  int64_t heads, batch_heads, seq_q, seq_kv;
  float scale_log2;
  const int32_t* kv_lens;
  HeadStrides os;
};

template <int D, int kConsumers>
constexpr int smem_bytes() {
  // Q, the K and V rings, the barriers (2 + 4 per stage, 8 bytes each); slack to align to 1024.
  return (64 * kConsumers * D + 2 * kStages * kBc * D) * 2 + 8 * (2 + 4 * kStages) + 1024;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Copies the map's box of rows from `row` (head h, batch b), head-dim columns [d, d + 64), into
// a panel.
__device__ __forceinline__ void load_panel(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                           MapDims m, int d, int row, int h, int b) {
  auto at = [&](int dim) { return m.seq == dim ? row : m.head == dim ? h : b; };
  sm90::tma_load_4d(dst, map, bar, d, at(1), at(2), at(3));
}
#endif

// kConsumers: consumer warpgroups of 64 query rows (2: 128-row blocks; 1: 64-row blocks, twice
// as many, for grids too small to fill the GPU; then 2 blocks fit on a multiprocessor).
// kPingpong (2 consumers): they take turns issuing their products (two named barriers), so that
// one's softmax runs while the other's products occupy the tensor cores.
template <typename T, int D, bool kCausal, bool kPingpong, int kConsumers>
__global__ void __launch_bounds__(128 * (1 + kConsumers), kConsumers == 1 ? 2 : 1)
    flash_forward_sm90(const __grid_constant__ Params<T> a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace sm90;
  static_assert(!kPingpong || kConsumers == 2);
  constexpr int kRows = 64 * kConsumers;  // query rows per block
  // Query blocks no taller than key blocks and aligned, so no key block lies wholly above a
  // warpgroup's rows under the causal mask: every warpgroup works on every key block.
  static_assert(kBc % kRows == 0);
  constexpr uint32_t kTileQ = kRows * D * 2, kTileKV = kBc * D * 2;  // bytes
  constexpr int kPanels = D / 64;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sq = base;
  const uint32_t sk = sq + kTileQ;
  const uint32_t sv = sk + kStages * kTileKV;
  const uint32_t bars = sv + kStages * kTileKV;
  const uint32_t full_q = bars;
  auto full_k = [&](int s) { return bars + 8 * (1 + s); };
  auto full_v = [&](int s) { return bars + 8 * (1 + kStages + s); };
  auto empty_k = [&](int s) { return bars + 8 * (1 + 2 * kStages + s); };
  auto empty_v = [&](int s) { return bars + 8 * (1 + 3 * kStages + s); };

  const uint32_t empty_q = bars + 8 * (1 + 4 * kStages);

  // Work items ("tiles"): one block of query rows of one (batch, head). Block x of the grid
  // takes tiles x, x + gridDim.x, ... (a grid as large as the tile count: one each; a smaller,
  // persistent grid: the producer runs ahead into the next tile while the consumers finish).
  const int n_qb = static_cast<int>((a.seq_q + kRows - 1) / kRows);
  const int n_tiles = n_qb * static_cast<int>(a.batch_heads);
  struct Tile {
    int q0, b, h, n_blocks;
    int64_t kv_len;
  };
  auto tile_at = [&](int tile) {
    Tile w;
    // Causal blocks with more queries see more keys: start those first.
    const int qb = kCausal ? n_qb - 1 - tile % n_qb : tile % n_qb;
    const int bh = tile / n_qb;
    w.b = static_cast<int>(bh / a.heads);
    w.h = static_cast<int>(bh % a.heads);
    w.q0 = qb * kRows;
    w.kv_len = a.seq_kv;
    if (a.kv_lens) w.kv_len = min(w.kv_len, static_cast<int64_t>(max(a.kv_lens[w.b], 0)));
    int64_t kv_end = w.kv_len;
    if (kCausal) kv_end = min(kv_end, static_cast<int64_t>(w.q0) + kRows);
    w.n_blocks = static_cast<int>((max(kv_end, int64_t{0}) + kBc - 1) / kBc);
    return w;
  };

  if (threadIdx.x == 0) {
    mbar_init(full_q, 1);
    mbar_init(empty_q, 4 * kConsumers);  // one arrival per consumer warp
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_k(s), 1);
      mbar_init(full_v(s), 1);
      mbar_init(empty_k(s), 4 * kConsumers);
      mbar_init(empty_v(s), 4 * kConsumers);
    }
    mbar_init_fence();
  }
  __syncthreads();

  // K/V blocks are counted across tiles (`it`): ring stage it % kStages, phase (it / kStages) & 1.
  const int wg = threadIdx.x / 128;
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (threadIdx.x == 0) {
      int it = 0, round = 0;
      for (int tile = blockIdx.x; tile < n_tiles; tile += gridDim.x, ++round) {
        const Tile w = tile_at(tile);
        if (round > 0) mbar_wait(empty_q, (round - 1) & 1);  // the consumers' last Q reads
        mbar_arrive_expect_tx(full_q, kTileQ);
        for (int pn = 0; pn < kPanels; ++pn)
          load_panel(sq + pn * kRows * 128, &a.q_map, full_q, a.qd, pn * 64, w.q0, w.h, w.b);
        for (int j = 0; j < w.n_blocks; ++j, ++it) {
          const int st = it % kStages;
          const uint32_t parity = ((it / kStages) + 1) & 1;  // the release of it - kStages
          if (it >= kStages) mbar_wait(empty_k(st), parity);
          mbar_arrive_expect_tx(full_k(st), kTileKV);
          for (int pn = 0; pn < kPanels; ++pn)
            load_panel(sk + st * kTileKV + pn * kBc * 128, &a.k_map, full_k(st), a.kd, pn * 64,
                       j * kBc, w.h, w.b);
          if (it >= kStages) mbar_wait(empty_v(st), parity);
          mbar_arrive_expect_tx(full_v(st), kTileKV);
          for (int pn = 0; pn < kPanels; ++pn)
            load_panel(sv + st * kTileKV + pn * kBc * 128, &a.v_map, full_v(st), a.vd, pn * 64,
                       j * kBc, w.h, w.b);
        }
      }
    }
  } else {
    // All the registers the producer gave up: 24 + 2 * 240 = 2 * 168 (2 consumers, one block
    // per multiprocessor); 24 + 232 = 2 * 128 (1 consumer, two blocks per multiprocessor).
    if constexpr (kConsumers == 2) {
      asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
    } else {
      asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    }
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wg_row = (wg - 1) * 64;                         // warpgroup's first row
    const int wrow = wg_row + ((threadIdx.x / 32) % 4) * 16;  // warp's first row
    auto release = [&](uint32_t bar) {
      __syncwarp();
      if (lane == 0) mbar_arrive(bar);
    };
    // Turns: warpgroup w (1 or 2) waits on named barrier w until the other one arrives there.
    // Per tile, warpgroup 2 arrives once ahead and skips its last hand-over, so the counts match.
    auto my_turn = [&] {
      if constexpr (kPingpong) asm volatile("bar.sync %0, 256;\n" ::"r"(wg) : "memory");
    };
    auto your_turn = [&](bool last) {
      if constexpr (kPingpong)
        if (!(last && wg == 2)) asm volatile("bar.arrive %0, 256;\n" ::"r"(3 - wg) : "memory");
    };
    float acc[D / 2];
    float m_run[2], l_run[2], alpha[2];
    float s[kBc / 2];
    uint32_t p[kBc / 16][4];
    auto stage = [](int i) { return i % kStages; };
    auto phase = [](int i) { return static_cast<uint32_t>((i / kStages) & 1); };

    int it = 0, round = 0;
    for (int tile = blockIdx.x; tile < n_tiles; tile += gridDim.x, ++round) {
      const Tile w = tile_at(tile);
#pragma unroll
      for (int i = 0; i < D / 2; ++i) acc[i] = 0.0f;
      m_run[0] = m_run[1] = -INFINITY;
      l_run[0] = l_run[1] = 0.0f;
      mbar_wait(full_q, round & 1);  // also when there is no key: no copy may outlive the block
      if (w.n_blocks > 0) {
        if (kPingpong && wg == 2) your_turn(false);
        mbar_wait(full_k(stage(it)), phase(it));
        my_turn();
        fence_operands<D>(acc, p);
        issue_qk<T, D, kRows>(s, sq, sk + stage(it) * kTileKV, wg_row);
        wgmma_commit();
        your_turn(false);
        wgmma_wait<0>();
        fence_registers(s);
        release(empty_k(stage(it)));
        mask_scores<kCausal>(s, 0, w.kv_len, w.q0, wrow, g, t);
        softmax_step(s, m_run, l_run, alpha, a.scale_log2);
        pack_p<T>(s, p);
        for (int j = 1; j < w.n_blocks; ++j) {
          const int cur = it + j, prev = it + j - 1;
          // Both waits before the first wgmma: a wait loop between two wgmmas would make ptxas
          // fence again. V_{j-1} was requested before K_j, so it is rarely the later one.
          mbar_wait(full_k(stage(cur)), phase(cur));
          mbar_wait(full_v(stage(prev)), phase(prev));
          my_turn();
          fence_operands<D>(acc, p);
          issue_qk<T, D, kRows>(s, sq, sk + stage(cur) * kTileKV, wg_row);
          wgmma_commit();
          issue_pv<T, D>(acc, p, sv + stage(prev) * kTileKV);
          wgmma_commit();
          your_turn(false);
          wgmma_wait<1>();  // S_j is ready; P_{j-1} V_{j-1} may still run
          fence_registers(s);
          release(empty_k(stage(cur)));
          mask_scores<kCausal>(s, static_cast<int64_t>(j) * kBc, w.kv_len, w.q0, wrow, g, t);
          softmax_step(s, m_run, l_run, alpha, a.scale_log2);
          wgmma_wait<0>();
          fence_registers(acc);
          release(empty_v(stage(prev)));
          rescale<D>(acc, alpha);
          pack_p<T>(s, p);
        }
        const int last = it + w.n_blocks - 1;
        mbar_wait(full_v(stage(last)), phase(last));
        my_turn();
        fence_operands<D>(acc, p);
        issue_pv<T, D>(acc, p, sv + stage(last) * kTileKV);
        wgmma_commit();
        your_turn(true);
        wgmma_wait<0>();
        fence_registers(acc);
        release(empty_v(stage(last)));
        it += w.n_blocks;
      }
      release(empty_q);  // every product reading this tile's Q has completed
      T* og = a.o + static_cast<int64_t>(w.b) * a.os.batch + static_cast<int64_t>(w.h) * a.os.head;
      store_output<T, D>(acc, l_run, og, static_cast<int64_t>(w.q0) + wrow + g, a.seq_q, a.os.seq,
                         t);
    }
  }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    KPT_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                    cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || f == nullptr)
      throw Error("flash attention: the CUDA driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A 4-d tensor map over one operand: head dim, then seq, head and batch ordered by stride (the
// map wants each stride to cover the previous dimension); boxes of 64 columns x `rows` rows, the
// 128-byte swizzle, zeros past the end.
CUtensorMap make_map(DType dt, const void* p, HeadStrides st, int64_t seq, int64_t heads,
                     int64_t batch, int64_t d, int rows, MapDims& dims) {
  struct Dim {
    int64_t extent, stride;
    int role;  // 0 seq, 1 head, 2 batch
  };
  Dim ds[3] = {{seq, st.seq, 0}, {heads, st.head, 1}, {batch, st.batch, 2}};
  // A dimension of extent 1 has no meaningful stride: put it last, past everything.
  int64_t span = d;
  for (const Dim& x : ds) span = std::max(span, x.stride * x.extent);
  for (Dim& x : ds)
    if (x.extent == 1) x.stride = span;
  std::stable_sort(ds, ds + 3, [](const Dim& x, const Dim& y) { return x.stride < y.stride; });
  cuuint64_t extent[4] = {static_cast<cuuint64_t>(d), 0, 0, 0};
  cuuint64_t stride[3];
  cuuint32_t box[4] = {64, 1, 1, 1};
  const cuuint32_t ones[4] = {1, 1, 1, 1};
  for (int i = 0; i < 3; ++i) {
    extent[i + 1] = static_cast<cuuint64_t>(ds[i].extent);
    stride[i] = static_cast<cuuint64_t>(ds[i].stride) * 2;
    if (ds[i].role == 0) {
      box[i + 1] = static_cast<cuuint32_t>(rows);
      dims.seq = i + 1;
    } else if (ds[i].role == 1) {
      dims.head = i + 1;
    } else {
      dims.batch = i + 1;
    }
  }
  CUtensorMap map;
  const CUresult r = encode_tiled()(
      &map, dt == DType::F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
      4, const_cast<void*>(p), extent, stride, box, ones, CU_TENSOR_MAP_INTERLEAVE_NONE,
      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error("flash attention: cuTensorMapEncodeTiled failed (CUresult " + std::to_string(r) +
                ")");
  return map;
}

template <typename T, int D, bool kCausal, bool kPingpong, int kConsumers>
void launch(const AttentionArgs& a, bool persistent, cudaStream_t stream) {
  constexpr int kRows = 64 * kConsumers;
  constexpr int smem = smem_bytes<D, kConsumers>();
  auto* kernel = flash_forward_sm90<T, D, kCausal, kPingpong, kConsumers>;
  ensure_dynamic_smem<flash_forward_sm90<T, D, kCausal, kPingpong, kConsumers>>(smem);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(D));
  Params<T> p{};
  p.q_map = make_map(a.dtype, a.q, resolved(a.q_strides, a.heads, a.seq_q, D), a.seq_q, a.heads,
                     a.batch, D, kRows, p.qd);
  p.k_map = make_map(a.dtype, a.k, resolved(a.k_strides, a.heads, a.seq_kv, D), a.seq_kv, a.heads,
                     a.batch, D, kBc, p.kd);
  p.v_map = make_map(a.dtype, a.v, resolved(a.v_strides, a.heads, a.seq_kv, D), a.seq_kv, a.heads,
                     a.batch, D, kBc, p.vd);
  p.o = static_cast<T*>(a.o);
  p.heads = a.heads;
  p.batch_heads = a.batch * a.heads;
  p.seq_q = a.seq_q;
  p.seq_kv = a.seq_kv;
  p.scale_log2 = scale * 1.4426950408889634f;
  p.kv_lens = a.kv_lens;
  p.os = resolved(a.o_strides, a.heads, a.seq_q, D);
  // Persistent: as many blocks as fit on the GPU at once, each taking several tiles.
  int64_t blocks = (a.seq_q + kRows - 1) / kRows * a.batch * a.heads;
  if (persistent)
    blocks =
        std::min<int64_t>(blocks, int64_t{current_device().multiprocessors} * (3 - kConsumers));
  kernel<<<static_cast<unsigned>(blocks), 128 * (1 + kConsumers), smem, stream>>>(p);
  KPT_CUDA_CHECK_LAUNCH();
}

template <typename T, int D, bool kCausal>
void launch_kind(const AttentionArgs& a, Sm90Kernel kind, cudaStream_t stream) {
  if (kind == Sm90Kernel::Rows64 || kind == Sm90Kernel::Rows64Persistent) {
    launch<T, D, kCausal, false, 1>(a, kind == Sm90Kernel::Rows64Persistent, stream);
  } else if (kind == Sm90Kernel::Rows128Pingpong) {
    launch<T, D, kCausal, true, 2>(a, false, stream);
  } else {
    launch<T, D, kCausal, false, 2>(a, kind == Sm90Kernel::Rows128Persistent, stream);
  }
}

template <typename T>
void launch_typed(const AttentionArgs& a, Sm90Kernel kind, cudaStream_t stream) {
  if (a.head_dim == 64) {
    a.causal ? launch_kind<T, 64, true>(a, kind, stream)
             : launch_kind<T, 64, false>(a, kind, stream);
  } else {
    a.causal ? launch_kind<T, 128, true>(a, kind, stream)
             : launch_kind<T, 128, false>(a, kind, stream);
  }
}

}  // namespace

void flash_attention_sm90(const AttentionArgs& a, Sm90Kernel kind, cudaStream_t stream) {
  if (a.seq_q > (int64_t{1} << 31) - kBc || a.seq_kv > (int64_t{1} << 31) - kBc)
    throw Unsupported("flash attention: sequences over 2^31 - 128 (TMA coordinates are int32)");
  if ((a.seq_q + 63) / 64 * a.batch * a.heads > std::numeric_limits<int>::max())
    throw Unsupported("flash attention: more than 2^31 query blocks");
  if (a.dtype == DType::F16) {
    launch_typed<__half>(a, kind, stream);
  } else {
    launch_typed<__nv_bfloat16>(a, kind, stream);
  }
}

}  // namespace kpt::cuda::flash
