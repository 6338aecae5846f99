#pragma once
// Work and size of a model from its inferred shapes: floating-point operations per node
// (a multiply-add counts 2) and parameters held in initializers.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "ir/graph.hpp"

namespace kpt::analysis {

// FLOPs of one node from the types in its graph (run infer_shapes first): MatMul/Gemm
// 2*M*N*K, Conv 2*out*Cin/group*kernel, ConvTranspose 2*in*Cout/group*kernel, Attention the
// two batched products, pools out*kernel, reductions their input elements, other computing
// ops one per output element, data movement (Reshape, Gather, ...) 0. nullopt when a shape
// it needs is not fully known or the op is not modelled.
std::optional<double> node_flops(const ir::Graph& g, const ir::Node& node);

struct FlopCount {
  double total = 0;  // over the nodes whose count is known
  int nodes_counted = 0;
  std::map<std::string, double> by_op;
  // Nodes left out, by op type: shapes not static, or op not modelled.
  std::map<std::string, int> unknown_by_op;
};

// Sums node_flops over the graph and its subgraphs (each body counted once).
FlopCount count_flops(const ir::Graph& g);

struct ParameterCount {
  int64_t tensors = 0;
  int64_t elements = 0;
  int64_t bytes = 0;
};

// Initializers of the graph and its subgraphs.
ParameterCount count_parameters(const ir::Graph& g);

}  // namespace kpt::analysis
