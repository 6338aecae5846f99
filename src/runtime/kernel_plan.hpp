#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/packed_weights.hpp"
#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "ops/kernel.hpp"

namespace kpt::runtime {

// The kernel chosen for each top-level node at session load: a prepared fast kernel from the
// CPU kernel registry, or nullptr where the reference kernel runs.
struct KernelPlan {
  std::vector<std::unique_ptr<ops::Kernel>> owned;
  std::vector<const ops::Kernel*> by_node;  // one per node of the graph
  // Kernel names ("dnnl.matmul(fp32)") and "reference:<op>" for the rest, counted.
  std::map<std::string, int> histogram;
  // The precision each node's kernel was prepared at (auto: what it chose).
  std::vector<Precision> precision_by_node;
};

// Infers types (so kernels see shapes and weights) and prepares a kernel per node, at
// `precision` or, for the nodes `per_node` names by first output, at the precision it gives (an
// engine file's auto decisions). Kernels reuse and record packed weights in `packed`.
KernelPlan plan_kernels(ir::Graph& g, Precision precision, cpu::PackedWeights* packed = nullptr,
                        const std::map<std::string, Precision>* per_node = nullptr);

// The fast kernel for node `k` of g at `precision` (types already inferred), or nullptr.
std::unique_ptr<ops::Kernel> prepare_node(const ir::Graph& g, size_t k, Precision precision,
                                          cpu::PackedWeights* packed = nullptr);

// Recounts plan.histogram from plan.by_node.
void count_kernels(const ir::Graph& g, KernelPlan& plan);

}  // namespace kpt::runtime
