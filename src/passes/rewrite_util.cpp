#include "passes/rewrite_util.hpp"

namespace kpt::passes {

void replace_uses(ir::Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes) {
    for (auto& i : n.inputs) {
      if (i == from) i = to;
    }
    for (auto& [name, a] : n.attrs) {
      if (a.g) replace_uses(*a.g, from, to);
      for (auto& sg : a.graphs) replace_uses(*sg, from, to);
    }
  }
}

std::set<std::string> used_values(const ir::Graph& g) {
  std::set<std::string> used;
  for (const auto& o : g.outputs) used.insert(o.name);
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) {
      if (!i.empty()) used.insert(i);
    }
    for (const auto& [name, a] : n.attrs) {
      if (a.g) used.merge(ir::outer_uses(*a.g));
      for (const auto& sg : a.graphs) used.merge(ir::outer_uses(*sg));
    }
  }
  return used;
}

bool is_graph_output(const ir::Graph& g, const std::string& value) {
  for (const auto& o : g.outputs) {
    if (o.name == value) return true;
  }
  return false;
}

bool is_graph_input(const ir::Graph& g, const std::string& value) {
  for (const auto& i : g.inputs) {
    if (i.name == value) return true;
  }
  return false;
}

const Tensor* constant_initializer(const ir::Graph& g, const std::string& value) {
  auto it = g.initializers.find(value);
  if (it == g.initializers.end() || is_graph_input(g, value)) return nullptr;
  return &it->second;
}

bool has_subgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

}  // namespace kpt::passes
