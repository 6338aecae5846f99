#include "runtime/executor.hpp"

#include <map>
#include <set>

#include "kpt/error.hpp"
#include "ops/registry.hpp"
#include "ops/run_node.hpp"

namespace kpt::runtime {

const Value* Scope::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return &it->second;
  return parent_ ? parent_->find(name) : nullptr;
}

Value Scope::take(const std::string& name) {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const Value* v = parent_ ? parent_->find(name) : nullptr;
  if (!v) fail("value '" + name + "' was never computed");
  return *v;
}

std::vector<Value> run_graph(const ir::Graph& g, const std::vector<Value>& inputs,
                             const Scope* parent, const std::vector<const ops::Kernel*>* kernels,
                             RunMemory* memory, const NodeObserver* observer) {
  check(!kernels || kernels->size() == g.nodes.size(),
        "graph '" + g.name + "': the kernel plan does not match the graph");
  Scope scope(parent);
  for (const auto& [name, t] : g.initializers) scope.set(name, Value::of(t));
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (i < inputs.size()) {
      scope.set(g.inputs[i].name, inputs[i]);
    } else if (!g.initializers.count(g.inputs[i].name)) {
      fail("graph '" + g.name + "': input '" + g.inputs[i].name + "' was not given");
    }
  }
  const ops::KernelContext::OutputAllocator allocator =
      [memory, &g](const ir::Node& n, size_t i, DType dtype, const Dims& dims) {
        return memory->allocate(static_cast<size_t>(&n - g.nodes.data()), i, dtype, dims);
      };
  const ops::SubgraphRunner runner = [&scope](const ir::Graph& body, const std::vector<Value>& in) {
    return run_graph(body, in, &scope);
  };
  // Each value is dropped after the last node that reads it, so peak memory follows the live set.
  std::unordered_map<std::string, size_t> last_use;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (const auto& name : g.nodes[k].inputs) last_use[name] = k;
    for (const auto& [n, a] : g.nodes[k].attrs) {
      if (a.g) {
        for (const auto& u : ir::outer_uses(*a.g)) last_use[u] = k;
      }
      for (const auto& sg : a.graphs) {
        for (const auto& u : ir::outer_uses(*sg)) last_use[u] = k;
      }
    }
  }
  for (const auto& o : g.outputs) last_use[o.name] = g.nodes.size();
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& node = g.nodes[k];
    std::vector<const Value*> in;
    in.reserve(node.inputs.size());
    for (const auto& name : node.inputs) {
      if (name.empty()) {
        in.push_back(nullptr);
        continue;
      }
      const Value* v = scope.find(name);
      if (!v) fail(node.label() + ": input '" + name + "' has no value");
      in.push_back(v);
    }
    std::vector<Value> out = ops::run_node(node, in, &runner, kernels ? (*kernels)[k] : nullptr,
                                           memory ? &allocator : nullptr);
    if (memory) memory->after_node(k, in, out);
    if (observer) (*observer)(k, in, out);
    for (const auto& name : node.inputs) {
      auto it = last_use.find(name);
      if (it != last_use.end() && it->second == k) scope.erase(name);
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (!node.outputs[i].empty()) scope.set(node.outputs[i], std::move(out[i]));
    }
  }
  std::vector<Value> results;
  results.reserve(g.outputs.size());
  for (const auto& o : g.outputs) results.push_back(scope.take(o.name));
  if (memory) memory->finish(results);
  return results;
}

namespace {
void collect_unsupported(const ir::Graph& g,
                         std::map<std::string, std::set<std::string>>& missing) {
  auto& registry = ops::Registry::instance();
  for (const auto& node : g.nodes) {
    if (!registry.find(node.domain, node.op_type, node.opset)) {
      std::string key = (node.domain.empty() ? "ai.onnx" : node.domain) + "::" + node.op_type +
                        " (opset " + std::to_string(node.opset) + ")";
      missing[key].insert(node.name.empty() ? "(unnamed)" : node.name);
    }
    for (const auto& [n, a] : node.attrs) {
      if (a.g) collect_unsupported(*a.g, missing);
      for (const auto& sg : a.graphs) collect_unsupported(*sg, missing);
    }
  }
}
}  // namespace

std::string unsupported_ops_report(const ir::Graph& g) {
  std::map<std::string, std::set<std::string>> missing;
  collect_unsupported(g, missing);
  if (missing.empty()) return "";
  std::string msg = "unsupported operators:";
  for (const auto& [op, nodes] : missing) {
    msg += "\n  " + op + " used by ";
    size_t k = 0;
    for (const auto& n : nodes) {
      if (k == 8) {
        msg += ", ... (" + std::to_string(nodes.size()) + " nodes)";
        break;
      }
      msg += (k++ ? ", " : "") + n;
    }
  }
  return msg;
}

}  // namespace kpt::runtime
