#pragma once
#include "kpt/tensor.hpp"

namespace kpt {

// Element-wise conversion between any two dtypes, strings included (numbers print and parse
// as ONNX's Cast defines). Floats to integers truncate toward zero; out-of-range values wrap as
// C++ conversion through int64 does; `saturate` applies to fp8 targets as ONNX defines.
Tensor cast_tensor(const Tensor& t, DType to, bool saturate = true);

}  // namespace kpt
