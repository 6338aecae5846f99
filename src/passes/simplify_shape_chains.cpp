// Replaces shape operands that exporters compute at run time (Shape -> Gather -> Unsqueeze ->
// Concat, Shape -> Slice, ...) by constants when symbolic shape analysis proves what they hold:
//
// - Reshape(x, target): each element becomes its known value, 0 ("copy the input's dim", with
//   allowzero=0) when it is provably x's dim at that position, or -1 for the one element left
//   to be inferred from the size;
// - Expand(x, target): each element becomes its known value, or 1 where it is provably x's dim
//   at that (right-aligned) position, which Expand then keeps;
// - Slice(x, starts, ends, axes, steps): known starts and ends become constants, and an end
//   that is provably the whole dim of its axis becomes INT64_MAX.
//
// The chains that computed the operands are left to dead-code elimination. Per-element
// computation of the same shape on every run is gone, and later passes see constant shapes.
#include <limits>
#include <optional>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

using Values = std::map<std::string, ir::Shape>;

const ir::Shape* shape_of(const ir::Graph& g, const std::string& v) {
  const ir::Type* t = g.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return nullptr;
  return &*t->shape;
}

// The symbolic elements of a computed (non-constant) 1-D integer operand.
const ir::Shape* computed(const ir::Graph& g, const Values& values, const std::string& v) {
  if (v.empty() || constant_initializer(g, v) || is_graph_input(g, v)) return nullptr;
  auto it = values.find(v);
  return it == values.end() ? nullptr : &it->second;
}

std::optional<std::vector<int64_t>> reshape_target(const ir::Shape& target, const ir::Shape* in,
                                                   bool allowzero) {
  std::vector<int64_t> out;
  bool inferred = false;
  for (size_t i = 0; i < target.size(); ++i) {
    const ir::Dim& d = target[i];
    if (auto v = analysis::dim_int(d)) {
      // A literal 0 means "copy" without allowzero and a zero-sized dim with it; the new
      // Reshape has allowzero=0, so only the first can stay.
      if (*v < -1 || (*v == 0 && allowzero)) return std::nullopt;
      if (*v == -1) {
        if (inferred) return std::nullopt;
        inferred = true;
      }
      out.push_back(*v);
    } else if (in && i < in->size() && analysis::same_dim(d, (*in)[i])) {
      out.push_back(0);
    } else {
      if (inferred) return std::nullopt;
      inferred = true;
      out.push_back(-1);
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> expand_target(const ir::Shape& target, const ir::Shape* in) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < target.size(); ++i) {
    const ir::Dim& d = target[i];
    if (auto v = analysis::dim_int(d); v && *v >= 0) {
      out.push_back(*v);
      continue;
    }
    if (!in || in->size() > target.size()) return std::nullopt;
    const size_t off = target.size() - in->size();
    if (i < off || !analysis::same_dim(d, (*in)[i - off])) return std::nullopt;
    out.push_back(1);
  }
  return out;
}

// Slice ends; nullopt when an element is neither known nor the whole of its axis.
std::optional<std::vector<int64_t>> slice_ends(const ir::Graph& g, const ir::Node& n,
                                               const ir::Shape& ends) {
  const ir::Shape* in = shape_of(g, n.inputs[0]);
  if (!in) return std::nullopt;
  const auto rank = static_cast<int64_t>(in->size());
  std::vector<int64_t> axes;
  if (n.inputs.size() > 3 && !n.inputs[3].empty()) {
    const Tensor* a = constant_initializer(g, n.inputs[3]);
    if (!a) return std::nullopt;
    axes = a->to_i64_vector();
  } else {
    for (size_t k = 0; k < ends.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  }
  if (axes.size() != ends.size()) return std::nullopt;
  std::vector<int64_t> steps(ends.size(), 1);
  if (n.inputs.size() > 4 && !n.inputs[4].empty()) {
    const Tensor* s = constant_initializer(g, n.inputs[4]);
    if (!s) return std::nullopt;
    steps = s->to_i64_vector();
  }
  std::vector<int64_t> out;
  for (size_t k = 0; k < ends.size(); ++k) {
    if (auto v = analysis::dim_int(ends[k])) {
      out.push_back(*v);
      continue;
    }
    const int64_t axis = axes[k] < 0 ? axes[k] + rank : axes[k];
    if (axis < 0 || axis >= rank || steps.size() != ends.size() || steps[k] <= 0 ||
        !analysis::same_dim(ends[k], (*in)[static_cast<size_t>(axis)]))
      return std::nullopt;
    out.push_back(std::numeric_limits<int64_t>::max());
  }
  return out;
}

class SimplifyShapeChains : public Pass {
 public:
  std::string name() const override { return "simplify_shape_chains"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    bool any = false;
    for (const auto& n : g.nodes) {
      any |= n.domain.empty() &&
             (n.op_type == "Reshape" || n.op_type == "Expand" || n.op_type == "Slice");
    }
    if (!any) return 0;
    Values values;
    try {
      analysis::InferenceOptions o;
      o.values = &values;
      analysis::infer_shapes(g, o);
    } catch (const Error&) {
      return 0;  // without shapes nothing is proved
    }
    int rewrites = 0;
    for (auto& n : g.nodes) {
      if (!n.domain.empty()) continue;
      if (n.op_type == "Reshape" && n.opset >= 5 && n.inputs.size() == 2) {
        const ir::Shape* target = computed(g, values, n.inputs[1]);
        if (!target) continue;
        auto t = reshape_target(*target, shape_of(g, n.inputs[0]), n.attr_int("allowzero", 0));
        if (!t) continue;
        n.inputs[1] = constant(g, n, *t, "shape");
        n.attrs.erase("allowzero");
        ++rewrites;
      } else if (n.op_type == "Expand" && n.inputs.size() == 2) {
        const ir::Shape* target = computed(g, values, n.inputs[1]);
        if (!target) continue;
        auto t = expand_target(*target, shape_of(g, n.inputs[0]));
        if (!t) continue;
        n.inputs[1] = constant(g, n, *t, "shape");
        ++rewrites;
      } else if (n.op_type == "Slice" && n.opset >= 10 && n.inputs.size() >= 3) {
        // nn.MultiheadAttention splits its packed projection at offsets computed from the
        // (static) hidden size.
        if (const ir::Shape* starts = computed(g, values, n.inputs[1])) {
          if (auto known = analysis::known_values(*starts)) {
            n.inputs[1] = constant(g, n, *known, "starts");
            ++rewrites;
          }
        }
        const ir::Shape* ends = computed(g, values, n.inputs[2]);
        if (!ends) continue;
        auto e = slice_ends(g, n, *ends);
        if (!e) continue;
        n.inputs[2] = constant(g, n, *e, "ends");
        ++rewrites;
      }
    }
    return rewrites;
  }

 private:
  static std::string constant(ir::Graph& g, const ir::Node& n, const std::vector<int64_t>& v,
                              const std::string& what) {
    std::string base = (n.name.empty() ? n.outputs[0] : n.name) + "_" + what;
    std::string name = base;
    for (int i = 1; g.initializers.count(name) || g.type_of(name); ++i)
      name = base + "_" + std::to_string(i);
    Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
    g.initializers[name] = std::move(t);
    return name;
  }
};

}  // namespace
KPT_REGISTER_PASS(22, SimplifyShapeChains);
}  // namespace kpt::passes
