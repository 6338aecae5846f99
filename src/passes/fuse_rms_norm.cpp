// Fuses the decomposed RMSNorm that the dynamo exporter writes for Llama,
//   y = weight * (x * Reciprocal(Sqrt(ReduceMean(Pow(x, 2)) + eps)))   (or x / Sqrt(...)),
// into one RMSNormalization node (opset 23). The mean reduces trailing axes with keepdims; eps
// and weight are constants; no intermediate value has another reader. A Cast to float around
// the normalization (half-precision models) is fused too.
#include <algorithm>
#include <optional>

#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

class FuseRmsNorm : public Pass {
 public:
  std::string name() const override { return "fuse_rms_norm"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (!ix.claimed(i) && is_op(ix.node(i), "Pow")) match(g, ix, i);
    }
    return ix.apply(g);
  }

 private:
  static void match(const ir::Graph& g, PatternIndex& ix, int pow) {
    const ir::Node& p = ix.node(pow);
    if (p.inputs.size() != 2 || !is_scalar_near(g, p.inputs[1], 2.0, 0.0)) return;
    const std::string& x = p.inputs[0];
    const int mean = ix.sole_reader(p.outputs[0], "ReduceMean");
    if (mean < 0 || ix.node(mean).attr_int("keepdims", 1) != 1) return;
    auto axes = reduce_axes(g, ix.node(mean));
    if (!axes) return;
    const int64_t k = trailing_axes(*axes, rank_of(g, x));
    if (k == 0) return;
    const int add = ix.sole_reader(ix.node(mean).outputs[0], "Add");
    if (add < 0) return;
    auto eps_name = other_input(ix.node(add), ix.node(mean).outputs[0]);
    if (!eps_name) return;
    auto eps = scalar_constant(g, *eps_name);
    if (!eps || *eps < 0) return;
    const int sqrt = ix.sole_reader(ix.node(add).outputs[0], "Sqrt");
    if (sqrt < 0) return;
    const std::string& s = ix.node(sqrt).outputs[0];
    std::vector<int> nodes = {pow, mean, add, sqrt};
    std::string normalized;
    if (int rec = ix.sole_reader(s, "Reciprocal"); rec >= 0) {
      const std::string& r = ix.node(rec).outputs[0];
      const int mul = ix.sole_reader(r, "Mul");
      if (mul < 0 || other_input(ix.node(mul), r) != x) return;
      nodes.insert(nodes.end(), {rec, mul});
      normalized = ix.node(mul).outputs[0];
    } else if (int div = ix.sole_reader(s, "Div"); div >= 0) {
      if (ix.node(div).inputs != std::vector<std::string>{x, s}) return;
      nodes.push_back(div);
      normalized = ix.node(div).outputs[0];
    } else {
      return;
    }
    // Mixed precision: x = Cast(x0, to=float), and the result is cast back to x0's type before
    // the weight multiplies it. The fused node reads x0 and keeps its type.
    std::string input = x;
    if (int down = ix.sole_reader(normalized, "Cast"); down >= 0) {
      const int up = ix.producer(x, "Cast");
      if (up < 0 || ix.node(up).attr_int("to", 0) != static_cast<int64_t>(DType::F32)) return;
      const std::string& x0 = ix.node(up).inputs[0];
      const ir::Type* t0 = g.type_of(x0);
      if (!t0 || t0->kind != ir::Type::Kind::Tensor || !is_float(t0->elem) ||
          ix.node(down).attr_int("to", 0) != static_cast<int64_t>(t0->elem)) {
        return;
      }
      nodes.push_back(down);
      input = x0;
      normalized = ix.node(down).outputs[0];
    }
    const int scale = ix.sole_reader(normalized, "Mul");
    if (scale < 0) return;
    auto weight = other_input(ix.node(scale), normalized);
    if (!weight) return;
    const Tensor* w = float_constant(g, *weight);
    if (!w || static_cast<int64_t>(w->rank()) > k) return;
    if (input != x && w->dtype() != g.type_of(input)->elem) return;
    nodes.push_back(scale);

    ir::Node fused;
    fused.name = ix.node(scale).name;
    fused.op_type = "RMSNormalization";
    fused.opset = std::max(23, p.opset);
    fused.inputs = {input, *weight};
    fused.outputs = {ix.node(scale).outputs[0]};
    fused.attrs["axis"] = ir::Attribute::of_int("axis", -k);
    fused.attrs["epsilon"] = ir::Attribute::of_float("epsilon", static_cast<float>(*eps));
    ix.replace(nodes, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(54, FuseRmsNorm);
}  // namespace kpt::passes
