// Fuses the decomposed LayerNorm that the TorchScript exporter writes below opset 17,
//   m = ReduceMean(x); d = x - m; v = ReduceMean(d ^ 2); y = d / Sqrt(v + eps) * gamma + beta,
// into one LayerNormalization node (opset 17). Both means reduce the same trailing axes with
// keepdims; eps, gamma and beta are constants; no intermediate value has another reader.
#include <algorithm>
#include <optional>

#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

// Both Reduce nodes: the same trailing axes, kept dims. Returns how many trailing axes (0: no).
int64_t mean_axes(const ir::Graph& g, const ir::Node& mean, const std::string& x) {
  if (mean.attr_int("keepdims", 1) != 1) return 0;
  auto axes = reduce_axes(g, mean);
  if (!axes) return 0;
  return trailing_axes(*axes, rank_of(g, x));
}

// A scale or shift that broadcasts onto the normalized dims only.
bool norm_param(const ir::Graph& g, const std::string& value, int64_t axes) {
  const Tensor* t = float_constant(g, value);
  return t && static_cast<int64_t>(t->rank()) <= axes;
}

class FuseLayerNorm : public Pass {
 public:
  std::string name() const override { return "fuse_layer_norm"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "Sub")) continue;
      match(g, ix, i);
    }
    return ix.apply(g);
  }

 private:
  static void match(const ir::Graph& g, PatternIndex& ix, int sub) {
    const ir::Node& s = ix.node(sub);
    if (s.inputs.size() != 2) return;
    const std::string& x = s.inputs[0];
    const std::string& d = s.outputs[0];
    const int mean1 = ix.producer(s.inputs[1], "ReduceMean");
    if (mean1 < 0 || ix.node(mean1).inputs[0] != x || ix.readers(s.inputs[1]) != 1) return;
    const int64_t axes = mean_axes(g, ix.node(mean1), x);
    if (axes == 0) return;
    // d is read by the Pow and by the Div.
    if (ix.readers(d) != 2) return;
    int pow = -1, div = -1;
    for (int j = sub + 1; j < ix.size(); ++j) {
      const ir::Node& n = ix.node(j);
      if (n.inputs.size() == 2 && n.inputs[0] == d) {
        if (is_op(n, "Pow")) pow = j;
        if (is_op(n, "Div")) div = j;
      }
    }
    if (pow < 0 || div < 0 || ix.claimed(pow) || ix.claimed(div)) return;
    if (!is_scalar_near(g, ix.node(pow).inputs[1], 2.0, 0.0)) return;
    const int mean2 = ix.sole_reader(ix.node(pow).outputs[0], "ReduceMean");
    if (mean2 < 0 || mean_axes(g, ix.node(mean2), x) != axes ||
        reduce_axes(g, ix.node(mean2)) != reduce_axes(g, ix.node(mean1))) {
      return;
    }
    const int add_eps = ix.sole_reader(ix.node(mean2).outputs[0], "Add");
    if (add_eps < 0) return;
    auto eps_name = other_input(ix.node(add_eps), ix.node(mean2).outputs[0]);
    if (!eps_name) return;
    auto eps = scalar_constant(g, *eps_name);
    if (!eps || *eps < 0) return;
    const int sqrt = ix.sole_reader(ix.node(add_eps).outputs[0], "Sqrt");
    if (sqrt < 0) return;
    if (ix.sole_reader(ix.node(sqrt).outputs[0], "Div") != div ||
        ix.node(div).inputs[1] != ix.node(sqrt).outputs[0]) {
      return;
    }
    const int mul = ix.sole_reader(ix.node(div).outputs[0], "Mul");
    if (mul < 0) return;
    auto gamma = other_input(ix.node(mul), ix.node(div).outputs[0]);
    if (!gamma || !norm_param(g, *gamma, axes)) return;
    std::vector<int> nodes = {mean1, sub, pow, mean2, add_eps, sqrt, div, mul};
    std::string y = ix.node(mul).outputs[0];
    std::optional<std::string> beta;
    const int add_beta = ix.sole_reader(y, "Add");
    if (add_beta >= 0) {
      beta = other_input(ix.node(add_beta), y);
      if (beta && norm_param(g, *beta, axes)) {
        nodes.push_back(add_beta);
        y = ix.node(add_beta).outputs[0];
      } else {
        beta.reset();
      }
    }
    ir::Node fused;
    fused.name = ix.node(nodes.back()).name;
    fused.op_type = "LayerNormalization";
    fused.opset = std::max(17, s.opset);
    fused.inputs = {x, *gamma};
    if (beta) fused.inputs.push_back(*beta);
    fused.outputs = {y};
    fused.attrs["axis"] = ir::Attribute::of_int("axis", -axes);
    fused.attrs["epsilon"] = ir::Attribute::of_float("epsilon", static_cast<float>(*eps));
    ix.replace(nodes, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(50, FuseLayerNorm);
}  // namespace kpt::passes
