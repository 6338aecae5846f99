#pragma once
// How closely two tensors agree: what `kpt bench --compare`, `auto` precision and validation
// report.
#include <string>

#include "kpt/tensor.hpp"

namespace kpt {

// How one output of ours compares with a reference (fp32, ONNX Runtime's).
struct Agreement {
  double max_abs = 0;       // max |ours - ref|
  double max_rel = 0;       // max |ours - ref| / |ref| over elements with |ref| > atol
  double cosine = 1;        // of the two flattened outputs; 1 when both are all zeros
  int64_t mismatches = 0;   // elements with |ours - ref| > atol + rtol * |ref| (NaN vs number too)
  std::string shape_error;  // non-empty when the shapes differ (the numbers are then meaningless)
  // True when every element is within tolerance (the fp32 criterion).
  bool within_tolerance() const { return shape_error.empty() && mismatches == 0; }
};

// Compares element by element in double precision; NaN in both at the same place counts as
// equal. Works for every numeric and bool dtype.
Agreement compare_outputs(const Tensor& ours, const Tensor& ref, double rtol, double atol);

}  // namespace kpt
