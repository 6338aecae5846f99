// Fuses the GELU forms that exporters decompose into one Gelu node (opset 20):
//   erf:  x * 0.5 * (1 + Erf(x / 1.4142...))       (or Erf(x * 0.7071...))
//   tanh: 0.5 * x * (1 + Tanh(0.7978... * (x + 0.044715 * x^3)))   (x^3 as Pow or x * x * x)
// with the 0.5 multiplied onto x, onto the product, or onto (1 + ...).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

constexpr double kConstTol = 1e-4;

struct Match {
  std::vector<int> nodes;
  std::string y;
};

bool is_half(const ir::Graph& g, const std::string& v) {
  return is_scalar_near(g, v, 0.5, 1e-6);
}

// y = 0.5 * x * b for b = 1 + erf/tanh(...), b read once.
std::optional<Match> half_x_times(const ir::Graph& g, const PatternIndex& ix, const std::string& b,
                                  const std::string& x) {
  const int m1 = ix.sole_reader(b, "Mul");
  if (m1 < 0) return std::nullopt;
  const ir::Node& n1 = ix.node(m1);
  auto o = other_input(n1, b);
  if (!o) return std::nullopt;
  if (*o == x) {  // (x * b) * 0.5
    const int m2 = ix.sole_reader(n1.outputs[0], "Mul");
    if (m2 < 0) return std::nullopt;
    auto h = other_input(ix.node(m2), n1.outputs[0]);
    if (!h || !is_half(g, *h)) return std::nullopt;
    return Match{{m1, m2}, ix.node(m2).outputs[0]};
  }
  if (is_half(g, *o)) {  // (b * 0.5) * x
    const int m2 = ix.sole_reader(n1.outputs[0], "Mul");
    if (m2 < 0) return std::nullopt;
    auto other = other_input(ix.node(m2), n1.outputs[0]);
    if (!other || *other != x) return std::nullopt;
    return Match{{m1, m2}, ix.node(m2).outputs[0]};
  }
  // (x * 0.5) * b
  const int h = ix.producer(*o, "Mul");
  if (h < 0 || ix.readers(*o) != 1) return std::nullopt;
  auto half = other_input(ix.node(h), x);
  if (!half || !is_half(g, *half)) return std::nullopt;
  return Match{{h, m1}, n1.outputs[0]};
}

// b = 1 + t, t read once.
int one_plus(const ir::Graph& g, const PatternIndex& ix, const std::string& t) {
  const int add = ix.sole_reader(t, "Add");
  if (add < 0) return -1;
  auto one = other_input(ix.node(add), t);
  return one && is_scalar_near(g, *one, 1.0, 0.0) ? add : -1;
}

ir::Node gelu_node(const PatternIndex& ix, const Match& m, const std::string& x,
                   const std::string& approximate) {
  ir::Node fused;
  fused.name = ix.node(m.nodes.back()).name;
  fused.op_type = "Gelu";
  fused.opset = std::max(20, ix.node(m.nodes.back()).opset);
  fused.inputs = {x};
  fused.outputs = {m.y};
  fused.attrs["approximate"] = ir::Attribute::of_string("approximate", approximate);
  return fused;
}

// x / sqrt(2) (Div) or x * (1 / sqrt(2)) (Mul): returns x.
std::optional<std::string> erf_argument(const ir::Graph& g, const PatternIndex& ix,
                                        const std::string& a, int* node) {
  if (ix.readers(a) != 1) return std::nullopt;
  if (int div = ix.producer(a, "Div"); div >= 0) {
    const ir::Node& n = ix.node(div);
    if (n.inputs.size() != 2 || !is_scalar_near(g, n.inputs[1], std::numbers::sqrt2, kConstTol))
      return std::nullopt;
    *node = div;
    return n.inputs[0];
  }
  if (int mul = ix.producer(a, "Mul"); mul >= 0) {
    const ir::Node& n = ix.node(mul);
    if (n.inputs.size() != 2) return std::nullopt;
    for (int k = 0; k < 2; ++k) {
      if (is_scalar_near(g, n.inputs[static_cast<size_t>(k)], 1.0 / std::numbers::sqrt2,
                         kConstTol)) {
        *node = mul;
        return n.inputs[static_cast<size_t>(1 - k)];
      }
    }
  }
  return std::nullopt;
}

void match_erf(const ir::Graph& g, PatternIndex& ix, int erf) {
  const ir::Node& e = ix.node(erf);
  if (e.inputs.size() != 1 || e.outputs.size() != 1) return;
  int scale = -1;
  auto x = erf_argument(g, ix, e.inputs[0], &scale);
  if (!x) return;
  const int add = one_plus(g, ix, e.outputs[0]);
  if (add < 0) return;
  auto m = half_x_times(g, ix, ix.node(add).outputs[0], *x);
  if (!m) return;
  m->nodes.insert(m->nodes.begin(), {scale, erf, add});
  ix.replace(m->nodes, gelu_node(ix, *m, *x, "none"));
}

// x^3 as Pow(x, 3) or x * (x * x) in either order: the nodes computing it.
std::optional<std::vector<int>> cube_of(const ir::Graph& g, const PatternIndex& ix,
                                        const std::string& c, const std::string& x) {
  if (ix.readers(c) != 1) return std::nullopt;
  if (int pow = ix.producer(c, "Pow"); pow >= 0) {
    const ir::Node& n = ix.node(pow);
    if (n.inputs.size() == 2 && n.inputs[0] == x && is_scalar_near(g, n.inputs[1], 3.0, 0.0))
      return std::vector<int>{pow};
    return std::nullopt;
  }
  const int mul = ix.producer(c, "Mul");
  if (mul < 0) return std::nullopt;
  auto sq = other_input(ix.node(mul), x);
  if (!sq || ix.readers(*sq) != 1) return std::nullopt;
  const int sq_mul = ix.producer(*sq, "Mul");
  if (sq_mul < 0 || ix.node(sq_mul).inputs != std::vector<std::string>{x, x}) return std::nullopt;
  return std::vector<int>{sq_mul, mul};
}

void match_tanh(const ir::Graph& g, PatternIndex& ix, int tanh) {
  const ir::Node& t = ix.node(tanh);
  if (t.inputs.size() != 1 || t.outputs.size() != 1 || ix.readers(t.inputs[0]) != 1) return;
  // u = sqrt(2 / pi) * v
  const int scale = ix.producer(t.inputs[0], "Mul");
  if (scale < 0) return;
  const ir::Node& su = ix.node(scale);
  if (su.inputs.size() != 2) return;
  const double k = std::sqrt(2.0 / std::numbers::pi);
  std::string v;
  if (is_scalar_near(g, su.inputs[1], k, kConstTol)) {
    v = su.inputs[0];
  } else if (is_scalar_near(g, su.inputs[0], k, kConstTol)) {
    v = su.inputs[1];
  } else {
    return;
  }
  // v = x + 0.044715 * x^3
  const int add = ix.producer(v, "Add");
  if (add < 0 || ix.readers(v) != 1 || ix.node(add).inputs.size() != 2) return;
  for (int side = 0; side < 2; ++side) {
    const std::string& x = ix.node(add).inputs[static_cast<size_t>(side)];
    const std::string& w = ix.node(add).inputs[static_cast<size_t>(1 - side)];
    const int wmul = ix.producer(w, "Mul");
    if (wmul < 0 || ix.readers(w) != 1 || ix.node(wmul).inputs.size() != 2) continue;
    for (int c = 0; c < 2; ++c) {
      const ir::Node& wn = ix.node(wmul);
      if (!is_scalar_near(g, wn.inputs[static_cast<size_t>(c)], 0.044715, 1e-6)) continue;
      auto cube = cube_of(g, ix, wn.inputs[static_cast<size_t>(1 - c)], x);
      if (!cube) continue;
      const int one = one_plus(g, ix, t.outputs[0]);
      if (one < 0) return;
      auto m = half_x_times(g, ix, ix.node(one).outputs[0], x);
      if (!m) return;
      std::vector<int> nodes = *cube;
      nodes.insert(nodes.end(), {wmul, add, scale, tanh, one});
      nodes.insert(nodes.end(), m->nodes.begin(), m->nodes.end());
      m->nodes = nodes;
      ix.replace(m->nodes, gelu_node(ix, *m, x, "tanh"));
      return;
    }
  }
}

class FuseGelu : public Pass {
 public:
  std::string name() const override { return "fuse_gelu"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i)) continue;
      if (is_op(ix.node(i), "Erf")) match_erf(g, ix, i);
      if (is_op(ix.node(i), "Tanh")) match_tanh(g, ix, i);
    }
    return ix.apply(g);
  }
};

}  // namespace
KPT_REGISTER_PASS(52, FuseGelu);
}  // namespace kpt::passes
