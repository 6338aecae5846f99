#pragma once
// AVX-512 float32 approximations of exp, erf and tanh for the fast CPU kernels, plus the
// run-time check that decides whether they may run. The polynomial coefficients were fitted
// for this project by weighted least squares on Chebyshev nodes (relative error of the fit:
// exp 4e-9, erf 1e-9 / erfc 4e-10, tanh 5e-9), so float32 rounding dominates: the results
// stay within a few ulp of std::exp/erf/tanh (tests/unit/cpu_kernels_test.cpp measures it).
//
// Every function here carries the AVX-512 target attribute itself instead of the file being
// compiled with -mavx512f: inline functions from other headers instantiated in such a file
// could be merged by the linker into code that runs on machines without AVX-512.
// GCC 12's AVX-512 headers build _mm512_undefined_ps from an uninitialized variable, which
// -Werror=uninitialized rejects once inlined; the warning is located in the intrinsic header,
// so it is silenced for that header only, before its first inclusion.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <atomic>
#include <cstdint>

#define KPT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace kpt::cpu::vec {

// Tests turn the AVX-512 paths off to exercise the portable ones on AVX-512 machines.
inline std::atomic<bool> avx512_disabled{false};

// True when the CPU (and OS) run AVX-512 F/BW/VL/DQ (computed once) and tests have not turned
// it off.
inline bool has_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return ok && !avx512_disabled.load(std::memory_order_relaxed);
}

// Mask with the low n (0..16) lanes set: loads and stores of row tails.
KPT_AVX512 inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// e^x. Overflow gives +inf, underflow 0, NaN stays NaN (max/min return their second operand
// when one is NaN, so x goes second).
KPT_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);  // e^-104 is below the smallest denormal
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);    // e^89 overflows: scalef gives +inf
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2 in two steps (ln2 split into a part exact in float and the rest).
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(0.00137514078931757f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.00836891634136409f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.04166953310927279f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.16666518459980287f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.49999988595112477f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// erf(x): an odd polynomial below |x| = 1; above, 1 - e^{-x^2} g(t) with t = 1/(1 + |x|/2)
// and g a polynomial fitted to erfc(z) e^{z^2}; erf(x) rounds to +-1 beyond |x| = 4.
KPT_AVX512 inline __m512 erf512(__m512 x) {
  const __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
  const __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), x);
  const __m512 a2 = _mm512_mul_ps(a, a);
  __m512 s = _mm512_set1_ps(7.8982101186023113e-05f);
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(-8.0243540990120044e-04f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(5.1900535739676096e-03f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(-2.6854808534763908e-02f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(1.1283612428167128e-01f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(-3.7612628843314189e-01f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(1.1283791665100467e+00f));
  s = _mm512_mul_ps(s, a);

  const __m512 z = _mm512_min_ps(_mm512_set1_ps(4.0f), a);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                 _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
  __m512 g = _mm512_set1_ps(1.1928062992437362e-01f);
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(-4.7104992519624245e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(5.6316710974896433e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(-1.0361797149962965e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(3.4784374223549025e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(2.5966668140122229e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(2.8491701677103448e-01f));
  g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(-1.5454404737953452e-04f));
  const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
  const __m512 l = _mm512_fnmadd_ps(e, g, _mm512_set1_ps(1.0f));

  const __m512 r =
      _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(1.0f), _CMP_LT_OQ), l, s);
  return _mm512_or_ps(r, sign);
}

// tanh(x): an odd polynomial below |x| = 0.625 (where 1 - 2/(e^{2x}+1) would cancel),
// above it 1 - 2/(e^{2|x|} + 1), which reaches 1 for large |x| without overflow trouble.
KPT_AVX512 inline __m512 tanh512(__m512 x) {
  const __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
  const __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), x);
  const __m512 a2 = _mm512_mul_ps(a, a);
  __m512 s = _mm512_set1_ps(-0.0057189627269362f);
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(0.02065312468181805f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(-0.05374465795908986f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(0.13331512665830733f));
  s = _mm512_fmadd_ps(s, a2, _mm512_set1_ps(-0.33333285219602465f));
  s = _mm512_fmadd_ps(_mm512_mul_ps(s, a2), a, a);

  const __m512 e = exp512(_mm512_add_ps(a, a));
  const __m512 l =
      _mm512_sub_ps(_mm512_set1_ps(1.0f),
                    _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  const __m512 r =
      _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ), l, s);
  return _mm512_or_ps(r, sign);
}

// 1 / (1 + e^{-x}).
KPT_AVX512 inline __m512 sigmoid512(__m512 x) {
  const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

}  // namespace kpt::cpu::vec
