#pragma once
#include <vector>

#include "ops/kernel.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {

// Runs one node's registered reference kernel: finds the kernel for the node's domain, op and
// opset, calls it, and returns one Value per node output. Errors name the node. Shared by the
// executor, constant folding and shape inference.
// With `prepared`, runs that kernel instead of the reference one.
// `allocator`, when given, serves the kernel's allocate_output calls.
std::vector<Value> run_node(const ir::Node& node, std::vector<const Value*> inputs,
                            const SubgraphRunner* run_subgraph, const Kernel* prepared = nullptr,
                            const KernelContext::OutputAllocator* allocator = nullptr);

// Runs the reference kernel on a context a prepared kernel was given: its fallback for cases
// it does not handle (a shape seen only at run time).
void run_reference(KernelContext& ctx);

// Ops whose outputs are not a function of their inputs (random generators): never folded or
// merged by passes.
bool is_nondeterministic(const ir::Node& node);

}  // namespace kpt::ops
