#include "passes/pattern.hpp"

#include <algorithm>
#include <cmath>

#include "passes/rewrite_util.hpp"

namespace kpt::passes {

PatternIndex::PatternIndex(const ir::Graph& g) : g_(g), claimed_(g.nodes.size(), false) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    for (const auto& o : n.outputs) {
      if (!o.empty()) producer_[o] = static_cast<int>(i);
    }
    for (const auto& in : n.inputs) {
      if (!in.empty()) readers_[in].push_back(static_cast<int>(i));
    }
    for (const auto& [name, a] : n.attrs) {
      if (a.g) {
        for (const auto& v : ir::outer_uses(*a.g)) ++extra_readers_[v];
      }
      for (const auto& sg : a.graphs) {
        for (const auto& v : ir::outer_uses(*sg)) ++extra_readers_[v];
      }
    }
  }
  for (const auto& o : g.outputs) ++extra_readers_[o.name];
}

int PatternIndex::producer(const std::string& value, const char* op) const {
  auto it = producer_.find(value);
  if (it == producer_.end() || claimed(it->second) || !is_op(node(it->second), op)) return -1;
  return it->second;
}

int PatternIndex::readers(const std::string& value) const {
  int count = 0;
  if (auto it = readers_.find(value); it != readers_.end())
    count += static_cast<int>(it->second.size());
  if (auto it = extra_readers_.find(value); it != extra_readers_.end()) count += it->second;
  return count;
}

int PatternIndex::sole_reader(const std::string& value, const char* op) const {
  if (readers(value) != 1) return -1;
  auto it = readers_.find(value);
  if (it == readers_.end()) return -1;  // read by a subgraph or a graph output
  int r = it->second.front();
  if (claimed(r) || !is_op(node(r), op)) return -1;
  return r;
}

bool PatternIndex::replace(const std::vector<int>& nodes, ir::Node fused) {
  std::vector<ir::Node> one;
  one.push_back(std::move(fused));
  return replace(nodes, std::move(one));
}

bool PatternIndex::replace(const std::vector<int>& nodes, std::vector<ir::Node> fused) {
  for (int i : nodes) {
    if (claimed(i)) return false;
  }
  for (int i : nodes) claimed_[static_cast<size_t>(i)] = true;
  fused_at_[*std::max_element(nodes.begin(), nodes.end())] = std::move(fused);
  return true;
}

int PatternIndex::apply(ir::Graph& g) {
  if (fused_at_.empty()) return 0;
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    auto it = fused_at_.find(static_cast<int>(i));
    if (it != fused_at_.end()) {
      for (auto& f : it->second) kept.push_back(std::move(f));
    } else if (!claimed_[i]) {
      kept.push_back(std::move(g.nodes[i]));
    } else {
      for (const auto& o : g.nodes[i].outputs) g.value_types.erase(o);
    }
  }
  g.nodes = std::move(kept);
  return static_cast<int>(fused_at_.size());
}

bool is_op(const ir::Node& n, const char* op) {
  return n.domain.empty() && n.op_type == op;
}

std::optional<std::string> other_input(const ir::Node& n, const std::string& one) {
  if (n.inputs.size() != 2) return std::nullopt;
  if (n.inputs[0] == one) return n.inputs[1];
  if (n.inputs[1] == one) return n.inputs[0];
  return std::nullopt;
}

const Tensor* float_constant(const ir::Graph& g, const std::string& value) {
  const Tensor* t = constant_initializer(g, value);
  if (!t || !is_float(t->dtype())) return nullptr;
  return t;
}

std::optional<double> scalar_constant(const ir::Graph& g, const std::string& value) {
  const Tensor* t = float_constant(g, value);
  if (!t || t->numel() != 1) return std::nullopt;
  return t->get_f64(0);
}

bool is_scalar_near(const ir::Graph& g, const std::string& value, double want, double tol) {
  auto v = scalar_constant(g, value);
  return v && std::abs(*v - want) <= tol;
}

std::optional<std::vector<int64_t>> reduce_axes(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    const Tensor* t = constant_initializer(g, n.inputs[1]);
    if (!t || t->numel() == 0 || is_float(t->dtype())) return std::nullopt;
    return t->to_i64_vector();
  }
  auto axes = n.attr_ints("axes");
  if (axes.empty()) return std::nullopt;
  return axes;
}

std::optional<int64_t> rank_of(const ir::Graph& g, const std::string& value) {
  const ir::Type* t = g.type_of(value);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return std::nullopt;
  return static_cast<int64_t>(t->shape->size());
}

int64_t trailing_axes(std::vector<int64_t> axes, std::optional<int64_t> rank) {
  for (auto& a : axes) {
    if (a >= 0) {
      if (!rank || a >= *rank) return 0;
      a -= *rank;
    }
  }
  std::sort(axes.begin(), axes.end());
  const auto k = static_cast<int64_t>(axes.size());
  for (int64_t i = 0; i < k; ++i) {
    if (axes[static_cast<size_t>(i)] != i - k) return 0;
  }
  if (rank && k > *rank) return 0;
  return k;
}

}  // namespace kpt::passes
