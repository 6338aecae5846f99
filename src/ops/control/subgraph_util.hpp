#pragma once
// Helpers for the ops that run a body graph repeatedly (Loop, Scan, SequenceMap).
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/tensor.hpp"
#include "ops/control/tensor_pieces.hpp"

namespace kpt::ops::control {

// The result of stacking zero per-iteration tensors: shape [0, <declared dims>] with the dtype
// the body declares for that output (unknown dims count as 0 elements either way).
inline Tensor empty_stacked(const ir::ValueInfo& declared) {
  DType dt = declared.type.elem;
  if (dt == DType::Undefined) dt = DType::F32;
  Dims d{0};
  if (declared.type.shape) {
    for (const auto& dim : *declared.type.shape) d.push_back(dim.known() ? dim.value : 0);
  }
  return Tensor(dt, d);
}

}  // namespace kpt::ops::control
