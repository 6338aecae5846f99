#pragma once
// Helpers shared by the nn kernels. Float kernels here compute in double and round once to
// the output type, which keeps f16/bf16 results within one rounding of the exact value.
#include <cmath>
#include <cstring>
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

inline int64_t product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

}  // namespace kpt::ops::nn
