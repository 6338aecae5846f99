#include "core/compare.hpp"

#include <algorithm>
#include <cmath>

#include "core/cast.hpp"

namespace kpt {

Agreement compare_outputs(const Tensor& ours, const Tensor& ref, double rtol, double atol) {
  Agreement a;
  if (ours.dims() != ref.dims()) {
    a.shape_error =
        "shape " + dims_to_string(ours.dims()) + " vs reference " + dims_to_string(ref.dims());
    a.cosine = 0;
    return a;
  }
  const Tensor x = cast_tensor(ours, DType::F64), y = cast_tensor(ref, DType::F64);
  const double* xp = x.data<double>();
  const double* yp = y.data<double>();
  double dot = 0, xx = 0, yy = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double u = xp[i], v = yp[i];
    if (std::isnan(u) || std::isnan(v)) {
      if (!(std::isnan(u) && std::isnan(v))) ++a.mismatches;
      continue;
    }
    // Equal infinities agree; subtracting them would give NaN.
    const double err = u == v ? 0.0 : std::abs(u - v);
    a.max_abs = std::max(a.max_abs, err);
    if (std::abs(v) > atol && std::isfinite(v)) a.max_rel = std::max(a.max_rel, err / std::abs(v));
    if (u != v && !(err <= atol + rtol * std::abs(v))) ++a.mismatches;
    if (std::isfinite(u) && std::isfinite(v)) {
      dot += u * v;
      xx += u * u;
      yy += v * v;
    }
  }
  if (xx == 0 && yy == 0) {
    a.cosine = 1;
  } else if (xx == 0 || yy == 0) {
    a.cosine = 0;
  } else {
    a.cosine = dot / (std::sqrt(xx) * std::sqrt(yy));
  }
  return a;
}

}  // namespace kpt
