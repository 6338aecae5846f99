#include "core/compare.hpp"

#include <cmath>

#include "core/cast.hpp"

namespace kpt {

Agreement compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  Agreement a;
  if (got.dims() != want.dims()) {
    a.shapes_match = false;
    a.cosine = 0;
    return a;
  }
  const Tensor g = got.dtype() == DType::F64 ? got : cast_tensor(got, DType::F64);
  const Tensor w = want.dtype() == DType::F64 ? want : cast_tensor(want, DType::F64);
  const double* x = g.data<double>();
  const double* y = w.data<double>();
  double dot = 0, nx = 0, ny = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    const double d = std::fabs(x[i] - y[i]);
    if (!(d <= atol + rtol * std::fabs(y[i]))) a.mismatched++;
    if (!std::isnan(d)) {
      a.max_abs = std::max(a.max_abs, d);
      a.max_rel = std::max(a.max_rel, d / std::max(std::fabs(y[i]), 1e-12));
    } else {
      a.max_abs = a.max_rel = INFINITY;
    }
    dot += x[i] * y[i];
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  if (nx > 0 && ny > 0) {
    a.cosine = dot / std::sqrt(nx * ny);
  } else {
    a.cosine = (nx == 0 && ny == 0) ? 1.0 : 0.0;
  }
  return a;
}

}  // namespace kpt
