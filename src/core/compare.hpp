#pragma once
// How closely two tensors agree: the measures `kpt bench --compare`, `auto` precision and
// validation report.
#include "kpt/tensor.hpp"

namespace kpt {

struct Agreement {
  double max_abs = 0;      // max |a - b|
  double max_rel = 0;      // max |a - b| / max(|b|, tiny)
  double cosine = 1;       // cosine similarity of the flattened tensors (1 when both are zero)
  int64_t mismatched = 0;  // elements beyond atol + rtol * |b| (see compare_tensors)
  bool shapes_match = true;
};

// Compares `got` with `want` (any numeric dtypes, converted to double); elements are counted
// as mismatched beyond atol + rtol * |want|. NaN matches NaN.
Agreement compare_tensors(const Tensor& got, const Tensor& want, double rtol = 1e-3,
                          double atol = 1e-4);

}  // namespace kpt
