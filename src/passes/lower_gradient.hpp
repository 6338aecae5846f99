#pragma once
#include "ir/graph.hpp"

namespace kpt::passes {

// Replaces each ai.onnx.preview.training Gradient node by the nodes that compute its result:
// reverse-mode differentiation of y (seeded with ones) with respect to xs through the forward
// nodes between them. Differentiates Add, Sub, Mul, Div, Neg and Identity on operands of equal
// shape; anything else is reported as unsupported, naming the op. Returns the nodes lowered.
// Runs at every optimization level: without it the graph cannot run.
int lower_gradients(ir::Graph& g);

}  // namespace kpt::passes
