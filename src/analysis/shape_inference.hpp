#pragma once
// Static and symbolic shape inference over a graph, with constant propagation: fills
// Graph::value_types for node outputs from the per-op infer functions of the op registry.
#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.hpp"

namespace kpt::analysis {

struct InferenceOptions {
  // Nodes whose inputs are all known run their reference kernel at inference time when every
  // input and output has fewer elements than this.
  int64_t max_constant_elements = 65536;
  // When set, receives the element values known as dims (see InferContext::input_values) of
  // the top-level graph's small integer tensors, so passes can prove two shape computations
  // equal.
  std::map<std::string, ir::Shape>* values = nullptr;
};

struct InferenceSummary {
  int nodes = 0;          // nodes visited, subgraphs included
  int nodes_folded = 0;   // computed to constants by their kernels
  int outputs_typed = 0;  // node outputs with a known element type
  int outputs_fully_static = 0;
  // Ops without an infer function, and infer functions that failed, by op type (count).
  std::map<std::string, int> ops_without_inference;
  std::map<std::string, int> ops_failed;
  std::map<std::string, std::string> first_failure;  // op type -> message
};

// Infers the type of every node output it can and stores it in g.value_types (merged with
// types the file declared: a known dim beats a symbol, a symbol beats unknown). Recurses into
// subgraphs. One op without inference leaves only what depends on it unknown.
InferenceSummary infer_shapes(ir::Graph& g, const InferenceOptions& options);
void infer_shapes(ir::Graph& g);

}  // namespace kpt::analysis
