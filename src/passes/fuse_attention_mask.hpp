#pragma once
// Facts about attention masks that the attention fusion needs to prove before it may drop a
// mask or replace it by Attention's is_causal: a mask that keeps every position, and masks that
// are exactly causal (position j of row i kept iff j <= i) however an exporter spelled them.
#include <map>
#include <optional>
#include <string>

#include "ir/graph.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes::attention {

// Symbolic element values of small integer tensors, from analysis::infer_shapes.
using Values = std::map<std::string, ir::Shape>;

// Type and shape of a value, constant initializers included.
std::optional<ir::Type> type_of(const ir::Graph& g, const std::string& v);
std::optional<ir::Shape> shape_of(const ir::Graph& g, const std::string& v);

// The k-th element of integer tensor `v` as a dim (known or symbolic), from a constant or from
// shape analysis; unknown when neither knows it.
ir::Dim element(const ir::Graph& g, const Values& values, const std::string& v, size_t k);

// A bool tensor that is true everywhere: a constant, ConstantOfShape(true), or Expand, Reshape,
// Unsqueeze, Slice or And of such.
bool all_true(const ir::Graph& g, const PatternIndex& ix, const std::string& v);

// A float tensor that is zero everywhere (a constant or ConstantOfShape(0)).
bool all_zero(const ir::Graph& g, const PatternIndex& ix, const std::string& v);

// A mask over the last two axes [i, j] equal to the causal pattern (kept iff j <= i). For a
// bool mask `keep` is true; for an additive float mask, kept means 0 and dropped means a value
// at most -1e30 (exp of it is 0 after Softmax subtracts the row maximum). Proved from:
// - a constant lower-triangular matrix sliced with the same start on both axes (GPT-2's tril
//   buffer, nn.Transformer's triu(-inf) buffer), or
// - LessOrEqual(kv_index, q_index) of Range(s, _, 1) vectors unsqueezed onto the last and the
//   second-to-last axis (the dynamo exporter's vmap-built causal mask).
bool causal(const ir::Graph& g, const PatternIndex& ix, const Values& values, const std::string& v,
            bool is_bool);

// The mask broadcasts into `scores` without enlarging it: same or lower rank, and each of its
// dims is 1 or provably the score dim.
bool fits(const ir::Graph& g, const std::string& mask, const std::string& scores);

}  // namespace kpt::passes::attention
