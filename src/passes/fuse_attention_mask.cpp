#include "passes/fuse_attention_mask.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "analysis/symbolic_dim.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes::attention {
namespace {

// Additive masks drop a position with a value whose exponent underflows to exactly 0.
constexpr double kDropped = -1e30;

std::optional<std::vector<int64_t>> const_ints(const ir::Graph& g, const std::string& v) {
  const Tensor* t = constant_initializer(g, v);
  if (!t || is_float(t->dtype()) || t->dtype() == DType::Bool) return std::nullopt;
  return t->to_i64_vector();
}

int64_t rank_of_value(const ir::Graph& g, const std::string& v) {
  if (const Tensor* t = constant_initializer(g, v)) return t->rank();
  const auto s = shape_of(g, v);
  return s ? static_cast<int64_t>(s->size()) : -1;
}

std::optional<std::vector<int64_t>> unsqueeze_axes(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.size() > 1) return const_ints(g, n.inputs[1]);
  return n.attr_ints("axes");
}

// How many elements integer tensor `v` has (0 when not known).
size_t element_count(const ir::Graph& g, const Values& values, const std::string& v) {
  if (const Tensor* t = constant_initializer(g, v)) return static_cast<size_t>(t->numel());
  if (auto it = values.find(v); it != values.end()) return it->second.size();
  const auto s = shape_of(g, v);
  if (!s || s->size() != 1 || !(*s)[0].known()) return 0;
  return static_cast<size_t>((*s)[0].value);
}

// C[..., i, j] follows the causal pattern over its last two axes for every leading index.
bool triangular_constant(const Tensor& c, bool is_bool) {
  if (c.rank() < 2) return false;
  const int64_t rows = c.dim(-2), cols = c.dim(-1);
  if (rows == 0 || cols == 0) return false;
  const int64_t planes = c.numel() / (rows * cols);
  // Typed reads: GPT-2's buffer has a million entries and every layer slices it.
  const auto* bytes = c.dtype() == DType::Bool ? c.data<uint8_t>() : nullptr;
  const auto* floats = c.dtype() == DType::F32 ? c.data<float>() : nullptr;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t at = (p * rows + i) * cols + j;
        const double x = bytes ? bytes[at] : floats ? floats[at] : c.get_f64(at);
        const bool kept = is_bool ? x != 0 : x == 0;
        const bool dropped = is_bool ? x == 0 : x <= kDropped;
        if (j <= i ? !kept : !dropped) return false;
      }
  return true;
}

// Slices (steps 1) of a constant lower-triangular matrix that start both of its last two axes
// at the same index leave the causal pattern.
bool causal_slice(const ir::Graph& g, const PatternIndex& ix, const Values& values,
                  const std::string& v, bool is_bool) {
  std::map<int64_t, ir::Dim> start;  // axis of the constant -> start of the slice on it
  std::string cur = v;
  for (int depth = 0; depth < 8; ++depth) {
    // Unsqueeze in front of the last two axes (nn.MultiheadAttention adds a batch axis).
    if (int u = ix.producer(cur, "Unsqueeze"); u >= 0) {
      const auto axes = unsqueeze_axes(g, ix.node(u));
      const auto out_rank = rank_of_value(g, cur);
      if (!axes || out_rank < 2) return false;
      for (int64_t a : *axes) {
        if ((a < 0 ? a + out_rank : a) >= out_rank - 2) return false;
      }
      cur = ix.node(u).inputs[0];
      continue;
    }
    const int s = ix.producer(cur, "Slice");
    if (s < 0) break;
    const ir::Node& n = ix.node(s);
    if (n.inputs.size() < 3) return false;
    const auto rank = rank_of_value(g, n.inputs[0]);
    if (rank < 2) return false;
    const size_t count = element_count(g, values, n.inputs[1]);
    if (count == 0) return false;
    std::vector<int64_t> axes(count);
    for (size_t k = 0; k < count; ++k) axes[k] = static_cast<int64_t>(k);
    if (n.inputs.size() > 3 && !n.inputs[3].empty()) {
      auto a = const_ints(g, n.inputs[3]);
      if (!a || a->size() != count) return false;
      axes = *a;
    }
    if (n.inputs.size() > 4 && !n.inputs[4].empty()) {
      auto st = const_ints(g, n.inputs[4]);
      if (!st || std::any_of(st->begin(), st->end(), [](int64_t x) { return x != 1; }))
        return false;
    }
    for (size_t k = 0; k < count; ++k) {
      const int64_t axis = axes[k] < 0 ? axes[k] + rank : axes[k];
      const ir::Dim d = element(g, values, n.inputs[1], k);
      auto known = analysis::dim_int(d);
      if ((known && *known < 0) || (!known && d.symbol.empty())) return false;
      // A second slice of one axis would add to the first start; exporters do not do that.
      if (start.count(axis - rank)) return false;
      start[axis - rank] = d;
    }
    cur = n.inputs[0];
  }
  const Tensor* c = constant_initializer(g, cur);
  if (!c || (c->dtype() == DType::Bool) != is_bool || !triangular_constant(*c, is_bool))
    return false;
  const ir::Dim zero = ir::Dim::of(0);
  const ir::Dim row = start.count(-2) ? start[-2] : zero;
  const ir::Dim col = start.count(-1) ? start[-1] : zero;
  return analysis::same_dim(row, col);
}

// The Range node whose 1-D output `v` spreads along one axis through Unsqueeze (and Cast)
// nodes, and that axis counted from the right (-1 is the last).
std::optional<std::pair<int, int64_t>> range_axis(const ir::Graph& g, const PatternIndex& ix,
                                                  const std::string& v) {
  std::vector<int> unsqueezes;
  std::string cur = v;
  for (int depth = 0; depth < 8; ++depth) {
    if (int u = ix.producer(cur, "Unsqueeze"); u >= 0) {
      unsqueezes.push_back(u);
      cur = ix.node(u).inputs[0];
    } else if (int c = ix.producer(cur, "Cast"); c >= 0) {
      cur = ix.node(c).inputs[0];
    } else {
      break;
    }
  }
  const int range = ix.producer(cur, "Range");
  if (range < 0) return std::nullopt;
  int64_t rank = 1, pos = 0;
  for (auto it = unsqueezes.rbegin(); it != unsqueezes.rend(); ++it) {
    auto a = unsqueeze_axes(g, ix.node(*it));
    if (!a) return std::nullopt;
    std::vector<int64_t> axes = *a;
    const int64_t out_rank = rank + static_cast<int64_t>(axes.size());
    for (auto& a : axes) a = a < 0 ? a + out_rank : a;
    std::sort(axes.begin(), axes.end());
    // Output positions not listed in axes take the input dims in order.
    int64_t in = 0;
    for (int64_t o = 0; o < out_rank; ++o) {
      if (std::binary_search(axes.begin(), axes.end(), o)) continue;
      if (in == pos) {
        pos = o;
        break;
      }
      ++in;
    }
    rank = out_rank;
  }
  return std::make_pair(range, pos - rank);
}

bool same_value(const ir::Graph& g, const Values& values, const std::string& a,
                const std::string& b) {
  return a == b || analysis::same_dim(element(g, values, a, 0), element(g, values, b, 0));
}

// kv_index <= q_index with kv_index = Range(s, _, 1) along the last axis and q_index =
// Range(s, _, 1) along the one before.
bool causal_compare(const ir::Graph& g, const PatternIndex& ix, const Values& values,
                    const std::string& v) {
  std::string col, row;
  if (int n = ix.producer(v, "LessOrEqual"); n >= 0) {
    col = ix.node(n).inputs[0];
    row = ix.node(n).inputs[1];
  } else if (int m = ix.producer(v, "GreaterOrEqual"); m >= 0) {
    row = ix.node(m).inputs[0];
    col = ix.node(m).inputs[1];
  } else {
    return false;
  }
  auto c = range_axis(g, ix, col);
  auto r = range_axis(g, ix, row);
  if (!c || !r || c->second != -1 || r->second != -2) return false;
  const ir::Node& rc = ix.node(c->first);
  const ir::Node& rr = ix.node(r->first);
  const ir::Dim one = ir::Dim::of(1);
  return same_value(g, values, rc.inputs[0], rr.inputs[0]) &&
         analysis::same_dim(element(g, values, rc.inputs[2], 0), one) &&
         analysis::same_dim(element(g, values, rr.inputs[2], 0), one);
}

bool constant_fill(const ir::Node& n, double want) {
  const Tensor* t = n.attr_tensor("value");
  if (!t) return want == 0;  // ConstantOfShape defaults to float zeros
  return t->numel() == 1 && t->get_f64(0) == want;
}

}  // namespace

ir::Dim element(const ir::Graph& g, const Values& values, const std::string& v, size_t k) {
  if (auto it = values.find(v); it != values.end() && k < it->second.size()) return it->second[k];
  if (const Tensor* t = constant_initializer(g, v);
      t && !is_float(t->dtype()) && static_cast<int64_t>(k) < t->numel()) {
    return analysis::int_dim(t->to_i64_vector()[k]);
  }
  return ir::Dim{};
}

bool all_true(const ir::Graph& g, const PatternIndex& ix, const std::string& v) {
  if (const Tensor* t = constant_initializer(g, v)) {
    if (t->dtype() != DType::Bool) return false;
    for (int64_t i = 0; i < t->numel(); ++i) {
      if (t->get_f64(i) == 0) return false;
    }
    return true;
  }
  if (int n = ix.producer(v, "ConstantOfShape"); n >= 0) {
    const Tensor* t = ix.node(n).attr_tensor("value");
    return t && t->dtype() == DType::Bool && t->numel() == 1 && t->get_f64(0) != 0;
  }
  for (const char* op : {"Expand", "Reshape", "Unsqueeze", "Slice"}) {
    if (int n = ix.producer(v, op); n >= 0) return all_true(g, ix, ix.node(n).inputs[0]);
  }
  if (int n = ix.producer(v, "And"); n >= 0) {
    return all_true(g, ix, ix.node(n).inputs[0]) && all_true(g, ix, ix.node(n).inputs[1]);
  }
  // Range(s, _, step >= 1) >= s, as the dynamo exporter's mask functions write "kv_idx >= 0".
  if (int n = ix.producer(v, "GreaterOrEqual"); n >= 0) {
    auto r = range_axis(g, ix, ix.node(n).inputs[0]);
    if (!r) return false;
    const ir::Node& range = ix.node(r->first);
    auto step = analysis::dim_int(element(g, Values{}, range.inputs[2], 0));
    return step && *step >= 1 && same_value(g, Values{}, range.inputs[0], ix.node(n).inputs[1]);
  }
  return false;
}

bool all_zero(const ir::Graph& g, const PatternIndex& ix, const std::string& v) {
  if (const Tensor* t = constant_initializer(g, v)) {
    if (!is_float(t->dtype())) return false;
    for (int64_t i = 0; i < t->numel(); ++i) {
      if (t->get_f64(i) != 0) return false;
    }
    return true;
  }
  if (int n = ix.producer(v, "ConstantOfShape"); n >= 0) return constant_fill(ix.node(n), 0);
  return false;
}

bool causal(const ir::Graph& g, const PatternIndex& ix, const Values& values, const std::string& v,
            bool is_bool) {
  if (causal_slice(g, ix, values, v, is_bool)) return true;
  return is_bool && causal_compare(g, ix, values, v);
}

std::optional<ir::Type> type_of(const ir::Graph& g, const std::string& v) {
  if (const Tensor* t = constant_initializer(g, v))
    return ir::Type::tensor(t->dtype(), analysis::shape_of_dims(t->dims()));
  const ir::Type* t = g.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor) return std::nullopt;
  return *t;
}

std::optional<ir::Shape> shape_of(const ir::Graph& g, const std::string& v) {
  auto t = type_of(g, v);
  if (!t || !t->shape) return std::nullopt;
  return *t->shape;
}

bool fits(const ir::Graph& g, const std::string& mask, const std::string& scores) {
  const auto m = shape_of(g, mask);
  const auto s = shape_of(g, scores);
  if (!m || !s || m->size() > s->size()) return false;
  const size_t off = s->size() - m->size();
  for (size_t d = 0; d < m->size(); ++d) {
    const ir::Dim& md = (*m)[d];
    if (!(md.known() && md.value == 1) && !analysis::same_dim(md, (*s)[off + d])) return false;
  }
  return true;
}

}  // namespace kpt::passes::attention
