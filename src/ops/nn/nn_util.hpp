#pragma once
// Helpers shared by the nn kernels. Float kernels here compute in double and round once to
// the output type, which keeps f16/bf16 results within one rounding of the exact value.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cast.hpp"
#include "kpt/tensor.hpp"
#include "ops/op_util.hpp"

namespace kpt::ops::nn {

inline std::vector<double> to_f64(const Tensor& t) {
  const Tensor d = t.dtype() == DType::F64 ? t : cast_tensor(t, DType::F64);
  std::vector<double> v(static_cast<size_t>(d.numel()));
  if (!v.empty()) std::memcpy(v.data(), d.data<double>(), v.size() * sizeof(double));
  return v;
}

inline Tensor from_f64(const std::vector<double>& v, const Dims& dims, DType dtype) {
  Tensor d(DType::F64, dims);
  if (!v.empty()) std::memcpy(d.data<double>(), v.data(), v.size() * sizeof(double));
  return dtype == DType::F64 ? d : cast_tensor(d, dtype);
}

// Fails unless a scratch tensor of `dims` (computed in double) stays a sane size; guards the
// intermediates whose size is a product of input dims rather than of one input's size.
inline void check_scratch(const Dims& dims, const std::string& what) {
  constexpr int64_t kMaxElements = int64_t{1} << 28;  // 2 GiB of doubles
  const int64_t n = element_count(dims);
  if (n > kMaxElements)
    fail(what + " would need " + std::to_string(n) + " elements (" + dims_to_string(dims) +
         "), more than the " + std::to_string(kMaxElements) + " this kernel allows");
}

inline int64_t product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

// numpy matmul of a [..., M, K] by b [..., K, N] with broadcast batch dims; 1-D operands are
// promoted as numpy does. Exact for integer operands whose products sum below 2^53.
inline std::vector<double> matmul_f64(const std::vector<double>& a, Dims ad,
                                      const std::vector<double>& b, Dims bd, Dims& out_dims) {
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (ad.empty() || bd.empty()) fail("MatMul operands must have rank >= 1");
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k)
    fail("MatMul inner dims differ: " + dims_to_string(ad) + " and " + dims_to_string(bd));
  const Dims a_batch(ad.begin(), ad.end() - 2), b_batch(bd.begin(), bd.end() - 2);
  const Dims batch = broadcast_dims(a_batch, b_batch);
  const auto oa = broadcast_offsets(batch, a_batch);
  const auto ob = broadcast_offsets(batch, b_batch);
  check_scratch({static_cast<int64_t>(oa.size()), m, n}, "the MatMul result");
  std::vector<double> out(oa.size() * static_cast<size_t>(m * n), 0.0);
  for (size_t bi = 0; bi < oa.size(); ++bi) {
    const double* pa = a.data() + oa[bi] * m * k;
    const double* pb = b.data() + ob[bi] * k * n;
    double* po = out.data() + static_cast<int64_t>(bi) * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < k; ++t) acc += pa[i * k + t] * pb[t * n + j];
        po[i * n + j] = acc;
      }
  }
  out_dims = batch;
  if (!a_vec) out_dims.push_back(m);
  if (!b_vec) out_dims.push_back(n);
  return out;
}

// Rounds v to the precision of a float dtype (to emulate arithmetic done in that type).
inline double round_to(DType t, double v) {
  switch (t) {
    case DType::F32:
      return static_cast<float>(v);
    case DType::F16:
      return half_to_float(float_to_half(static_cast<float>(v)));
    case DType::BF16:
      return bfloat16_to_float(float_to_bfloat16(static_cast<float>(v)));
    default:
      return v;
  }
}

}  // namespace kpt::ops::nn
