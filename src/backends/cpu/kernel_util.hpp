#pragma once
// Small checks the fast CPU kernels share when deciding at load whether they take a node.
#include <cstddef>

#include "backends/cpu/kernel_registry.hpp"

namespace kpt::cpu {

// False when input i's type is known at load and is not a tensor of `dtype`; an unknown type
// passes (the kernel checks again at run time and falls back to the reference kernel).
inline bool input_may_be(const PrepareContext& ctx, size_t i, DType dtype) {
  if (i >= ctx.input_types.size() || ctx.input_types[i] == nullptr) return true;
  const ir::Type& t = *ctx.input_types[i];
  return t.kind == ir::Type::Kind::Tensor && t.elem == dtype;
}

inline bool has_input(const ir::Node& n, size_t i) {
  return i < n.inputs.size() && !n.inputs[i].empty();
}

inline bool has_output(const ir::Node& n, size_t i) {
  return i < n.outputs.size() && !n.outputs[i].empty();
}

}  // namespace kpt::cpu
