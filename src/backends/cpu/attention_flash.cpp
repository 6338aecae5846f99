// The flash attention algorithm of attention_kernel.hpp. One driver, written once, runs on two
// sets of block operations: AVX-512 (register-blocked multiply micro-kernels, vector exp) and
// portable C++. Each operation works on a whole block, so calling it through the policy costs
// nothing measurable and only the operations need the AVX-512 target attribute.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/attention_kernel.hpp"
#include "backends/cpu/vec_math.hpp"

namespace kpt::cpu {
namespace {

constexpr int64_t kKeyBlock = 64;    // keys per block: one 64-wide row of scores per query
constexpr int64_t kQueryBlock = 64;  // queries per task
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Masking facts of one query row for one key block.
struct RowMask {
  const uint8_t* bools = nullptr;  // bool mask row at key j0 (or nullptr)
  const float* adds = nullptr;     // float mask row at key j0 (or nullptr)
  int64_t sj = 0;                  // mask stride along keys (0: one value for the row)
  int64_t valid = 0;               // keys [0, valid) of the block may attend (causal, width)
};

// Per-thread scratch for one query block.
struct Scratch {
  std::vector<float> s;  // [kQueryBlock][kKeyBlock] scores, then probabilities
  std::vector<float> o;  // [kQueryBlock][ldo] running output
  std::vector<float> m, l;
  int64_t ldo = 0;
};

// ---- portable block operations ------------------------------------------------------------
struct PortableOps {
  // s[r][0..64) = q row r . kt[.][0..64) for r < rows.
  static void scores(const float* q, int64_t q_ss, int64_t rows, const float* kt, int64_t d,
                     float* s) {
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * kKeyBlock;
      std::fill(sr, sr + kKeyBlock, 0.0f);
      const float* qr = q + r * q_ss;
      for (int64_t x = 0; x < d; ++x) {
        const float a = qr[x];
        const float* kr = kt + x * kKeyBlock;
        for (int64_t j = 0; j < kKeyBlock; ++j) sr[j] += a * kr[j];
      }
    }
  }

  // Scales and masks row s[0..nk), turns it into probabilities against the running maximum
  // *m and returns the factor by which the earlier output must shrink; adds to *l.
  static float softmax_row(float* s, int64_t nk, float scale, const RowMask& mk, float* m,
                           float* l) {
    float mx = kNegInf;
    for (int64_t j = 0; j < nk; ++j) {
      float x = s[j] * scale;
      // Keys at or past `valid` are masked and their mask entries may not exist.
      if (j >= mk.valid)
        x = kNegInf;
      else if (mk.bools && mk.bools[j * mk.sj] == 0)
        x = kNegInf;
      else if (mk.adds)
        x += mk.adds[j * mk.sj];
      s[j] = x;
      mx = std::max(mx, x);
    }
    return finish_row(s, nk, mx, m, l);
  }

  static float finish_row(float* s, int64_t nk, float mx, float* m, float* l) {
    const float m_new = std::max(*m, mx);
    if (m_new == kNegInf) {  // every key so far masked: contributes nothing
      std::fill(s, s + nk, 0.0f);
      return 1.0f;
    }
    float sum = 0;
    for (int64_t j = 0; j < nk; ++j) {
      s[j] = std::exp(s[j] - m_new);
      sum += s[j];
    }
    const float alpha = std::exp(*m - m_new);
    *l = *l * alpha + sum;
    *m = m_new;
    return alpha;
  }

  static void scale_row(float* o, int64_t n, float f) {
    for (int64_t x = 0; x < n; ++x) o[x] *= f;
  }

  // o[r][0..dv) += sum_j p[r][j] v[j][0..dv).
  static void accumulate(const float* p, int64_t rows, int64_t nk, const float* v, int64_t v_ss,
                         int64_t dv, float* o, int64_t ldo) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < nk; ++j) {
        const float a = p[r * kKeyBlock + j];
        if (a == 0.0f) continue;
        const float* vr = v + j * v_ss;
        float* orow = o + r * ldo;
        for (int64_t x = 0; x < dv; ++x) orow[x] += a * vr[x];
      }
  }

  static void finalize_row(const float* o, int64_t dv, float l, float* y) {
    const float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int64_t x = 0; x < dv; ++x) y[x] = o[x] * inv;
  }
};

// ---- AVX-512 block operations -------------------------------------------------------------
// C[MR][NV*16] (+)= A[MR][kdim] * B[kdim][NV*16]: A read by broadcast (row stride lda), B by
// rows (stride ldb) whose last vector is masked with `last`. MR*NV accumulators stay in
// registers (6x4 = 24 of 32).
template <int MR, int NV>
KPT_AVX512 void micro_kernel(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                             int64_t ldc, int64_t kdim, __mmask16 last, bool accumulate) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = accumulate
                      ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xFFFF, c + r * ldc + v * 16)
                      : _mm512_setzero_ps();
  for (int64_t k = 0; k < kdim; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xFFFF, b + k * ldb + v * 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_mask_storeu_ps(c + r * ldc + v * 16, v == NV - 1 ? last : 0xFFFF, acc[r][v]);
}

using MicroKernel = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                             __mmask16, bool);
constexpr int kMR = 6;

template <int MR>
constexpr MicroKernel pick_nv(int nv) {
  return nv == 1   ? &micro_kernel<MR, 1>
         : nv == 2 ? &micro_kernel<MR, 2>
         : nv == 3 ? &micro_kernel<MR, 3>
                   : &micro_kernel<MR, 4>;
}

MicroKernel pick(int mr, int nv) {
  switch (mr) {
    case 1:
      return pick_nv<1>(nv);
    case 2:
      return pick_nv<2>(nv);
    case 3:
      return pick_nv<3>(nv);
    case 4:
      return pick_nv<4>(nv);
    case 5:
      return pick_nv<5>(nv);
    default:
      return pick_nv<6>(nv);
  }
}

// C[rows][cols] (+)= A[rows][kdim] B[kdim][cols], in MR x 64 tiles.
void gemm_blocks(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                 int64_t rows, int64_t cols, int64_t kdim, bool accumulate) {
  for (int64_t c0 = 0; c0 < cols; c0 += 64) {
    const int64_t w = std::min<int64_t>(64, cols - c0);
    const int nv = static_cast<int>((w + 15) / 16);
    const __mmask16 last = static_cast<__mmask16>(
        (w - (nv - 1) * 16) >= 16 ? 0xFFFF : (1u << (w - (nv - 1) * 16)) - 1u);
    for (int64_t r0 = 0; r0 < rows; r0 += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, rows - r0));
      pick(mr, nv)(a + r0 * lda, lda, b + c0, ldb, c + r0 * ldc + c0, ldc, kdim, last, accumulate);
    }
  }
}

// A row of at most kKeyBlock scores stays in registers between the masking/maximum pass and
// the exponential pass (kKeyBlock / 16 vectors, unrolled).
KPT_AVX512 float softmax_row_avx512(float* s, int64_t nk, float scale, const RowMask& mk, float* m,
                                    float* l) {
  constexpr int kVecs = static_cast<int>(kKeyBlock / 16);
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512 ninf = _mm512_set1_ps(kNegInf);
  __m512 xs[kVecs];
  __mmask16 ins[kVecs];
  __m512 vmax = ninf;
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) {
    const int64_t j = v * 16;
    const __mmask16 in = vec::tail_mask(std::max<int64_t>(0, nk - j));
    __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(in, s + j), vscale);
    // Keys at or past `valid` are masked and their mask entries may not exist: the masked
    // loads read only the kept lanes.
    __mmask16 keep = in & vec::tail_mask(std::max<int64_t>(0, mk.valid - j));
    if (mk.bools && keep) {
      if (mk.sj == 0) {
        if (mk.bools[0] == 0) keep = 0;
      } else {
        const __m128i bytes = _mm_maskz_loadu_epi8(keep, mk.bools + j);
        keep &= _mm_test_epi8_mask(bytes, bytes);
      }
    }
    if (mk.adds && keep)
      x = _mm512_add_ps(
          x, mk.sj == 0 ? _mm512_set1_ps(mk.adds[0]) : _mm512_maskz_loadu_ps(keep, mk.adds + j));
    xs[v] = _mm512_mask_blend_ps(keep, ninf, x);
    ins[v] = in;
    vmax = _mm512_mask_max_ps(vmax, in, vmax, xs[v]);
  }
  const float mx = _mm512_reduce_max_ps(vmax);
  const float m_new = std::max(*m, mx);
  if (m_new == kNegInf) {  // every key so far masked: contributes nothing
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) _mm512_mask_storeu_ps(s + v * 16, ins[v], _mm512_setzero_ps());
    return 1.0f;
  }
  const __m512 vm = _mm512_set1_ps(m_new);
  __m512 vsum = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) {
    const __m512 p = vec::exp512(_mm512_sub_ps(xs[v], vm));
    _mm512_mask_storeu_ps(s + v * 16, ins[v], p);
    vsum = _mm512_mask_add_ps(vsum, ins[v], vsum, p);
  }
  const float alpha = std::exp(*m - m_new);
  *l = *l * alpha + _mm512_reduce_add_ps(vsum);
  *m = m_new;
  return alpha;
}

KPT_AVX512 void scale_row_avx512(float* o, int64_t n, float f) {
  const __m512 vf = _mm512_set1_ps(f);
  for (int64_t x = 0; x < n; x += 16) {
    const __mmask16 in = vec::tail_mask(n - x);
    _mm512_mask_storeu_ps(o + x, in, _mm512_mul_ps(_mm512_maskz_loadu_ps(in, o + x), vf));
  }
}

struct Avx512Ops {
  static void scores(const float* q, int64_t q_ss, int64_t rows, const float* kt, int64_t d,
                     float* s) {
    gemm_blocks(q, q_ss, kt, kKeyBlock, s, kKeyBlock, rows, kKeyBlock, d, false);
  }
  static float softmax_row(float* s, int64_t nk, float scale, const RowMask& mk, float* m,
                           float* l) {
    return softmax_row_avx512(s, nk, scale, mk, m, l);
  }
  static void scale_row(float* o, int64_t n, float f) { scale_row_avx512(o, n, f); }
  static void accumulate(const float* p, int64_t rows, int64_t nk, const float* v, int64_t v_ss,
                         int64_t dv, float* o, int64_t ldo) {
    gemm_blocks(p, kKeyBlock, v, v_ss, o, ldo, rows, dv, nk, true);
  }
  static void finalize_row(const float* o, int64_t dv, float l, float* y) {
    PortableOps::finalize_row(o, dv, l, y);
  }
};

// ---- the driver ---------------------------------------------------------------------------

// K transposed into [key block][D][kKeyBlock] per (batch, kv head), keys past L zero, so the
// score micro-kernel reads 64 consecutive keys per head-size element.
std::vector<float> pack_keys(const AttentionProblem& p, int64_t nkb) {
  const int64_t per_head = nkb * p.head * kKeyBlock;
  std::vector<float> kt(static_cast<size_t>(p.batch * p.kv_heads * per_head));
  const int64_t tasks = p.batch * p.kv_heads * nkb;
#pragma omp parallel for schedule(static) if (tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t bh = t / nkb, kb = t % nkb;
    const int64_t b = bh / p.kv_heads, h = bh % p.kv_heads;
    const float* src = p.k + b * p.k_sb + h * p.k_sh;
    float* dst = kt.data() + bh * per_head + kb * p.head * kKeyBlock;
    for (int64_t j = 0; j < kKeyBlock; ++j) {
      const int64_t key = kb * kKeyBlock + j;
      if (key < p.kv_len) {
        const float* row = src + key * p.k_ss;
        for (int64_t x = 0; x < p.head; ++x) dst[x * kKeyBlock + j] = row[x];
      } else {
        for (int64_t x = 0; x < p.head; ++x) dst[x * kKeyBlock + j] = 0.0f;
      }
    }
  }
  return kt;
}

template <class Ops>
void query_block(const AttentionProblem& p, const float* kt, int64_t nkb, int64_t b, int64_t h,
                 int64_t i0, Scratch& sc) {
  const int64_t rows = std::min(kQueryBlock, p.q_len - i0);
  const int64_t kvh = h / (p.q_heads / p.kv_heads);
  const float* q = p.q + b * p.q_sb + h * p.q_sh + i0 * p.q_ss;
  const float* v = p.v + b * p.v_sb + kvh * p.v_sh;
  const float* kth = kt + (b * p.kv_heads + kvh) * nkb * p.head * kKeyBlock;
  std::fill(sc.o.begin(), sc.o.begin() + rows * sc.ldo, 0.0f);
  std::fill(sc.m.begin(), sc.m.end(), kNegInf);
  std::fill(sc.l.begin(), sc.l.end(), 0.0f);
  // Causal: the block's last query sees keys up to its own index, so later blocks are skipped.
  const int64_t key_end = p.causal ? std::min(p.kv_len, i0 + rows) : p.kv_len;
  // Keys past a short (opset-24) mask are masked too.
  const int64_t limit = std::min(key_end, p.mask ? p.mask_width : key_end);
  for (int64_t j0 = 0; j0 < limit; j0 += kKeyBlock) {
    const int64_t nk = std::min(kKeyBlock, p.kv_len - j0);
    Ops::scores(q, p.q_ss, rows, kth + (j0 / kKeyBlock) * p.head * kKeyBlock, p.head, sc.s.data());
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      RowMask mk;
      mk.valid = std::min(p.causal ? i + 1 : limit, limit) - j0;
      if (p.mask) {
        mk.sj = p.m_sj;
        const int64_t off = b * p.m_sb + h * p.m_sh + i * p.m_si + j0 * p.m_sj;
        if (p.mask_is_bool)
          mk.bools = static_cast<const uint8_t*>(p.mask) + off;
        else
          mk.adds = static_cast<const float*>(p.mask) + off;
      }
      const float alpha =
          Ops::softmax_row(sc.s.data() + r * kKeyBlock, nk, p.scale, mk,
                           &sc.m[static_cast<size_t>(r)], &sc.l[static_cast<size_t>(r)]);
      if (alpha != 1.0f) Ops::scale_row(sc.o.data() + r * sc.ldo, p.v_head, alpha);
    }
    Ops::accumulate(sc.s.data(), rows, nk, v + j0 * p.v_ss, p.v_ss, p.v_head, sc.o.data(), sc.ldo);
  }
  for (int64_t r = 0; r < rows; ++r)
    Ops::finalize_row(sc.o.data() + r * sc.ldo, p.v_head, sc.l[static_cast<size_t>(r)],
                      p.y + b * p.y_sb + h * p.y_sh + (i0 + r) * p.y_ss);
}

template <class Ops>
void run(const AttentionProblem& p) {
  const int64_t nkb = (p.kv_len + kKeyBlock - 1) / kKeyBlock;
  const std::vector<float> kt = pack_keys(p, nkb);
  const int64_t nqb = (p.q_len + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = p.batch * p.q_heads * nqb;
#pragma omp parallel if (tasks > 1)
  {
    Scratch sc;
    sc.ldo = (p.v_head + 15) / 16 * 16;
    sc.s.resize(static_cast<size_t>(kQueryBlock * kKeyBlock));
    sc.o.resize(static_cast<size_t>(kQueryBlock * sc.ldo));
    sc.m.resize(static_cast<size_t>(kQueryBlock));
    sc.l.resize(static_cast<size_t>(kQueryBlock));
    // Dynamic: causal blocks near the end of the sequence carry more keys than early ones.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      // Latest query blocks (the heaviest under causal masking) first.
      const int64_t qb = nqb - 1 - t % nqb;
      const int64_t bh = t / nqb;
      query_block<Ops>(p, kt.data(), nkb, bh / p.q_heads, bh % p.q_heads, qb * kQueryBlock, sc);
    }
  }
}

}  // namespace

void flash_attention(const AttentionProblem& p) {
  if (vec::has_avx512())
    run<Avx512Ops>(p);
  else
    run<PortableOps>(p);
}

void flash_attention_portable(const AttentionProblem& p) {
  run<PortableOps>(p);
}

}  // namespace kpt::cpu
