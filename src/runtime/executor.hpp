#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/value.hpp"
#include "ops/kernel.hpp"
#include "runtime/memory_plan.hpp"

namespace kpt::runtime {

// Values visible while a graph runs; subgraph scopes chain to their parents.
class Scope {
 public:
  explicit Scope(const Scope* parent = nullptr) : parent_(parent) {}
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value v) { values_[name] = std::move(v); }
  Value take(const std::string& name);
  void erase(const std::string& name) { values_.erase(name); }  // only this scope's own values

 private:
  const Scope* parent_;
  std::unordered_map<std::string, Value> values_;
};

// Runs a graph with the reference kernels of the op registry, node by node in topological
// order. `inputs` are positional (graph.inputs order); a missing trailing input falls back to
// the initializer of the same name.
// Sees every node's inputs and outputs as the graph runs (calibration, debugging).
using NodeObserver = std::function<void(size_t node, const std::vector<const Value*>& inputs,
                                        const std::vector<Value>& outputs)>;

// `kernels`, when given, holds one entry per node of g (nullptr: the reference kernel);
// `memory`, when given, places the outputs prepared kernels allocate (see memory_plan.hpp).
std::vector<Value> run_graph(const ir::Graph& g, const std::vector<Value>& inputs,
                             const Scope* parent = nullptr,
                             const std::vector<const ops::Kernel*>* kernels = nullptr,
                             RunMemory* memory = nullptr, const NodeObserver* observer = nullptr);

// Every op of the graph (and its subgraphs) that no registered kernel implements, as one
// message naming each op with its domain and opset and the nodes that use it ("" if none).
std::string unsupported_ops_report(const ir::Graph& g);

}  // namespace kpt::runtime
