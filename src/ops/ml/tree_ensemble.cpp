// ai.onnx.ml TreeEnsemble (opset 5): evaluates every tree of the ensemble on each row of X,
// aggregates the leaf weights per target and applies the post transform.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

enum Mode : int64_t { kLeq = 0, kLt = 1, kGte = 2, kGt = 3, kEq = 4, kNeq = 5, kMember = 6 };
enum Aggregate : int64_t { kAverage = 0, kSum = 1, kMin = 2, kMax = 3 };
enum PostTransform : int64_t { kNone = 0, kSoftmax = 1, kLogistic = 2, kSoftmaxZero = 3 };

struct Ensemble {
  std::vector<int64_t> roots, features, modes, true_ids, true_leafs, false_ids, false_leafs;
  std::vector<int64_t> missing_tracks_true, leaf_targets;
  std::vector<double> splits, leaf_weights;
  std::vector<std::vector<double>> members;  // per node; filled for BRANCH_MEMBER nodes
  int64_t n_targets = 0;
};

std::vector<double> tensor_values(const KernelContext& ctx, const std::string& name,
                                  bool required) {
  const Tensor* t = ctx.node().attr_tensor(name);
  if (t == nullptr) {
    if (required) ctx.fail("attribute " + name + " (a tensor) is missing");
    return {};
  }
  std::vector<double> v(static_cast<size_t>(t->numel()));
  for (int64_t i = 0; i < t->numel(); ++i) v[static_cast<size_t>(i)] = t->get_f64(i);
  return v;
}

void check_size(const KernelContext& ctx, const std::string& name, size_t got, size_t want,
                const std::string& like) {
  if (got != want)
    ctx.fail("attribute " + name + " has " + std::to_string(got) + " elements; expected " +
             std::to_string(want) + " (one per entry of " + like + ")");
}

Ensemble read_ensemble(const KernelContext& ctx) {
  Ensemble e;
  e.roots = ctx.attr_ints("tree_roots");
  e.features = ctx.attr_ints("nodes_featureids");
  e.true_ids = ctx.attr_ints("nodes_truenodeids");
  e.true_leafs = ctx.attr_ints("nodes_trueleafs");
  e.false_ids = ctx.attr_ints("nodes_falsenodeids");
  e.false_leafs = ctx.attr_ints("nodes_falseleafs");
  e.leaf_targets = ctx.attr_ints("leaf_targetids");
  e.n_targets = ctx.attr_int("n_targets", 0);
  e.splits = tensor_values(ctx, "nodes_splits", true);
  e.leaf_weights = tensor_values(ctx, "leaf_weights", true);
  for (double m : tensor_values(ctx, "nodes_modes", true))
    e.modes.push_back(static_cast<int64_t>(m));
  const size_t n = e.features.size();
  check_size(ctx, "nodes_splits", e.splits.size(), n, "nodes_featureids");
  check_size(ctx, "nodes_modes", e.modes.size(), n, "nodes_featureids");
  check_size(ctx, "nodes_truenodeids", e.true_ids.size(), n, "nodes_featureids");
  check_size(ctx, "nodes_trueleafs", e.true_leafs.size(), n, "nodes_featureids");
  check_size(ctx, "nodes_falsenodeids", e.false_ids.size(), n, "nodes_featureids");
  check_size(ctx, "nodes_falseleafs", e.false_leafs.size(), n, "nodes_featureids");
  check_size(ctx, "leaf_weights", e.leaf_weights.size(), e.leaf_targets.size(), "leaf_targetids");
  e.missing_tracks_true = ctx.attr_ints("nodes_missing_value_tracks_true");
  if (e.missing_tracks_true.empty()) e.missing_tracks_true.assign(n, 0);
  check_size(ctx, "nodes_missing_value_tracks_true", e.missing_tracks_true.size(), n,
             "nodes_featureids");
  if (e.n_targets <= 0)
    ctx.fail("attribute n_targets is " + std::to_string(e.n_targets) + "; expected > 0");
  if (e.roots.empty()) ctx.fail("attribute tree_roots is empty; expected at least one tree");
  for (int64_t t : e.leaf_targets)
    if (t < 0 || t >= e.n_targets)
      ctx.fail("leaf_targetids holds " + std::to_string(t) + "; expected 0 <= id < n_targets (" +
               std::to_string(e.n_targets) + ")");
  for (int64_t m : e.modes)
    if (m < kLeq || m > kMember)
      ctx.fail("nodes_modes holds " + std::to_string(m) + "; expected 0 (BRANCH_LEQ) to 6 " +
               "(BRANCH_MEMBER)");
  // membership_values lists one set per BRANCH_MEMBER node, in node order, separated by NaN.
  e.members.resize(n);
  const std::vector<double> values = tensor_values(ctx, "membership_values", false);
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    if (e.modes[i] != kMember) continue;
    if (values.empty())
      ctx.fail("node " + std::to_string(i) +
               " is BRANCH_MEMBER but attribute membership_values is missing or empty");
    while (next < values.size() && !std::isnan(values[next]))
      e.members[i].push_back(values[next++]);
    if (next < values.size()) ++next;  // the NaN separator
  }
  return e;
}

bool goes_true(const Ensemble& e, size_t node, double x) {
  if (std::isnan(x) && e.missing_tracks_true[node] != 0) return true;
  const double s = e.splits[node];
  switch (e.modes[node]) {
    case kLeq:
      return x <= s;
    case kLt:
      return x < s;
    case kGte:
      return x >= s;
    case kGt:
      return x > s;
    case kEq:
      return x == s;
    case kNeq:
      return x != s;
    default:
      return std::find(e.members[node].begin(), e.members[node].end(), x) != e.members[node].end();
  }
}

// The leaf that `row` reaches in the tree rooted at `root`.
size_t find_leaf(const KernelContext& ctx, const Ensemble& e, int64_t root, const double* row,
                 int64_t n_features) {
  const auto n_nodes = static_cast<int64_t>(e.features.size());
  int64_t node = root;
  for (int64_t steps = 0;; ++steps) {
    if (node < 0 || node >= n_nodes)
      ctx.fail("node id " + std::to_string(node) + " is out of range; expected 0 <= id < " +
               std::to_string(n_nodes));
    if (steps > n_nodes)
      ctx.fail("the tree rooted at node " + std::to_string(root) + " has a cycle");
    const auto i = static_cast<size_t>(node);
    const int64_t f = e.features[i];
    if (f < 0 || f >= n_features)
      ctx.fail("nodes_featureids holds " + std::to_string(f) + " but X has " +
               std::to_string(n_features) + " features");
    const bool t = goes_true(e, i, row[f]);
    const int64_t id = t ? e.true_ids[i] : e.false_ids[i];
    if ((t ? e.true_leafs[i] : e.false_leafs[i]) != 0) {
      if (id < 0 || id >= static_cast<int64_t>(e.leaf_targets.size()))
        ctx.fail("leaf id " + std::to_string(id) + " is out of range; expected 0 <= id < " +
                 std::to_string(e.leaf_targets.size()));
      return static_cast<size_t>(id);
    }
    node = id;
  }
}

void post_transform(const KernelContext& ctx, int64_t kind, double* v, int64_t n) {
  switch (kind) {
    case kNone:
      return;
    case kLogistic:
      for (int64_t i = 0; i < n; ++i) v[i] = 1.0 / (1.0 + std::exp(-v[i]));
      return;
    case kSoftmax:
    case kSoftmaxZero: {
      const bool skip_zero = kind == kSoftmaxZero;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i)
        if (!skip_zero || v[i] != 0.0) mx = std::max(mx, v[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        if (skip_zero && v[i] == 0.0) continue;
        v[i] = std::exp(v[i] - mx);
        sum += v[i];
      }
      for (int64_t i = 0; i < n; ++i)
        if (!skip_zero || v[i] != 0.0) v[i] /= sum;
      return;
    }
    default:
      ctx.unsupported("post_transform " + std::to_string(kind) +
                      " (supported: 0 NONE, 1 SOFTMAX, 2 LOGISTIC, 3 SOFTMAX_ZERO)");
  }
}

void tree_ensemble(KernelContext& ctx) {
  const Tensor& x_in = ctx.input(0);
  if (!is_float(x_in.dtype()))
    ctx.fail("input X has element type " + std::string(dtype_name(x_in.dtype())) +
             "; expected float, double or float16");
  if (x_in.rank() != 2) ctx.fail("input X is " + x_in.describe() + "; expected 2-D [N, F]");
  const Ensemble e = read_ensemble(ctx);
  const int64_t aggregate = ctx.attr_int("aggregate_function", kSum);
  if (aggregate < kAverage || aggregate > kMax)
    ctx.fail("aggregate_function is " + std::to_string(aggregate) +
             "; expected 0 (AVERAGE), 1 (SUM), 2 (MIN) or 3 (MAX)");
  const int64_t transform = ctx.attr_int("post_transform", kNone);
  const int64_t rows = x_in.dim(0), n_features = x_in.dim(1), nt = e.n_targets;
  std::vector<double> row(static_cast<size_t>(n_features));
  std::vector<double> tree_out(static_cast<size_t>(nt));
  std::vector<double> result(static_cast<size_t>(nt));
  Tensor y_f64(DType::F64, {rows, nt});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t f = 0; f < n_features; ++f)
      row[static_cast<size_t>(f)] = x_in.get_f64(r * n_features + f);
    for (size_t k = 0; k < e.roots.size(); ++k) {
      std::fill(tree_out.begin(), tree_out.end(), 0.0);
      const size_t leaf = find_leaf(ctx, e, e.roots[k], row.data(), n_features);
      tree_out[static_cast<size_t>(e.leaf_targets[leaf])] += e.leaf_weights[leaf];
      for (size_t t = 0; t < tree_out.size(); ++t) {
        if (k == 0 || aggregate == kSum || aggregate == kAverage)
          result[t] = k == 0 ? tree_out[t] : result[t] + tree_out[t];
        else if (aggregate == kMin)
          result[t] = std::min(result[t], tree_out[t]);
        else
          result[t] = std::max(result[t], tree_out[t]);
      }
    }
    if (aggregate == kAverage)
      for (double& v : result) v /= static_cast<double>(e.roots.size());
    post_transform(ctx, transform, result.data(), nt);
    std::copy(result.begin(), result.end(), y_f64.data<double>() + r * nt);
  }
  if (x_in.dtype() == DType::F64) return ctx.set_output(0, std::move(y_f64));
  Tensor y32(DType::F32, {rows, nt});
  for (int64_t i = 0; i < y32.numel(); ++i)
    y32.data<float>()[i] = static_cast<float>(y_f64.data<double>()[i]);
  ctx.set_output(0, from_compute(y32, x_in.dtype()));
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.ml", "TreeEnsemble", 5, tree_ensemble);

}  // namespace kpt::ops
