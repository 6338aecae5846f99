#pragma once
// Small helpers for fusion passes: who produces and who reads each value of a graph, constant
// operands, and a batch of rewrites that replace chains of nodes by one node each.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace kpt::passes {

class PatternIndex {
 public:
  explicit PatternIndex(const ir::Graph& g);

  const ir::Graph& graph() const { return g_; }
  const ir::Node& node(int i) const { return g_.nodes[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(g_.nodes.size()); }

  // Index of the default-domain `op` node producing `value`, -1 when none (or when claimed).
  int producer(const std::string& value, const char* op) const;
  // Readers of `value`: node inputs (a node reading it twice counts twice), one per subgraph
  // that uses it, and one when it is a graph output.
  int readers(const std::string& value) const;
  // Index of the one node reading `value` when that node is the default-domain `op` and
  // nothing else reads it; -1 otherwise.
  int sole_reader(const std::string& value, const char* op) const;

  bool claimed(int i) const { return claimed_[static_cast<size_t>(i)]; }
  // Replaces `nodes` by `fused`, which takes the position of the last of them. False (and
  // nothing recorded) when one of them is already part of another rewrite.
  bool replace(const std::vector<int>& nodes, ir::Node fused);
  // The same with several nodes, placed in this order.
  bool replace(const std::vector<int>& nodes, std::vector<ir::Node> fused);
  // Applies the recorded rewrites to `g` (the graph this index was built from); returns how
  // many there were.
  int apply(ir::Graph& g);

 private:
  const ir::Graph& g_;
  std::map<std::string, int> producer_;
  std::map<std::string, std::vector<int>> readers_;
  std::map<std::string, int> extra_readers_;  // graph outputs and subgraph uses
  std::vector<bool> claimed_;
  std::map<int, std::vector<ir::Node>> fused_at_;  // position -> fused nodes
};

bool is_op(const ir::Node& n, const char* op);
// The other input of a two-input node when one of its inputs is `one`; nullopt otherwise.
std::optional<std::string> other_input(const ir::Node& n, const std::string& one);
// A floating-point constant initializer (not overridable by a graph input), else nullptr.
const Tensor* float_constant(const ir::Graph& g, const std::string& value);
// The value of a one-element floating-point constant.
std::optional<double> scalar_constant(const ir::Graph& g, const std::string& value);
bool is_scalar_near(const ir::Graph& g, const std::string& value, double want, double tol);
// Axes of a Reduce* node (attribute, or constant input from opset 18); nullopt when they are
// absent (reduce all) or not constant.
std::optional<std::vector<int64_t>> reduce_axes(const ir::Graph& g, const ir::Node& n);
std::optional<int64_t> rank_of(const ir::Graph& g, const std::string& value);
// k when `axes` are exactly the last k axes (non-negative axes need `rank`), 0 otherwise.
int64_t trailing_axes(std::vector<int64_t> axes, std::optional<int64_t> rank);

}  // namespace kpt::passes
