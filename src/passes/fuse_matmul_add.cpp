// Fuses a linear layer and what follows it into one kpt.MatMulBiasAct node, so that a GEMM
// backend applies bias and activation in its epilogue instead of re-reading the product:
//   MatMul(A, W) [+ bias] [-> activation]   (A of any rank; W 2-D, usually a constant weight)
//   Gemm(A, W, C) [-> activation]           (older TorchScript exports of nn.Linear)
// The bias is a constant of shape [N] or [1, .., 1, N] (the Add's operands in either order);
// activations: Relu, Gelu (the opset-20 op that fuse_gelu makes of the erf/tanh forms),
// Sigmoid, Tanh, and Silu written as x * Sigmoid(x). A MatMul followed by neither bias nor
// activation stays a MatMul. Nothing is fused when an intermediate value has another reader.
// B must be 2-D, so the batched MatMuls of attention (left to fuse_attention) never match.
#include <algorithm>
#include <optional>

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

// What follows the product: the nodes it takes, the bias and activation, the final value.
struct Epilogue {
  std::vector<int> nodes;
  std::string bias;
  std::string activation;
  std::string output;
};

class FuseMatMulAdd : public Pass {
 public:
  std::string name() const override { return "fuse_matmul_add"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    inferred_ = false;
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i)) continue;
      if (is_op(ix.node(i), "MatMul")) match_matmul(g, ix, i);
      if (is_op(ix.node(i), "Gemm")) match_gemm(g, ix, i);
    }
    const int fused = ix.apply(g);
    if (fused > 0 && !g.opsets.count("kpt")) g.opsets["kpt"] = 1;
    return fused;
  }

 private:
  bool inferred_ = false;

  // Rank of a value, inferring the graph's shapes once when a candidate needs it.
  std::optional<int64_t> rank(ir::Graph& g, const std::string& v) {
    auto r = rank_of(g, v);
    if (r || inferred_) return r;
    inferred_ = true;
    try {
      analysis::infer_shapes(g);
    } catch (const Error&) {
      // Without shapes only what needs no rank is fused.
    }
    return rank_of(g, v);
  }

  // Element type and [K, N] of a 2-D B: from the constant, else from inferred shapes.
  struct Weight {
    DType dtype = DType::Undefined;
    int64_t n = -1;  // -1 when unknown
  };
  std::optional<Weight> weight_of(ir::Graph& g, const std::string& b) {
    if (const Tensor* w = float_constant(g, b)) {
      if (w->rank() != 2) return std::nullopt;
      return Weight{w->dtype(), w->dims()[1]};
    }
    if (rank(g, b) != 2) return std::nullopt;
    const ir::Type* t = g.type_of(b);
    if (!is_float(t->elem)) return std::nullopt;
    const ir::Dim& n = (*t->shape)[1];
    return Weight{t->elem, n.known() ? n.value : -1};
  }

  // A constant bias of shape [N] or [1, .., 1, N] that does not raise the product's rank.
  bool is_bias(ir::Graph& g, const std::string& bias, const Weight& w, const std::string& a) {
    const Tensor* b = float_constant(g, bias);
    if (!b || b->dtype() != w.dtype || b->rank() == 0 || w.n < 0 || b->dims().back() != w.n)
      return false;
    for (size_t k = 0; k + 1 < b->rank(); ++k) {
      if (b->dims()[k] != 1) return false;
    }
    if (b->rank() == 1) return true;
    auto ra = rank(g, a);  // the product has A's rank (at least 2 once B is 2-D)
    return ra && *ra >= static_cast<int64_t>(b->rank());
  }

  // The activation reading `v` alone (Silu: a Sigmoid and the Mul of v by it), if any.
  static std::optional<Epilogue> activation_after(const PatternIndex& ix, const std::string& v) {
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "Gelu"}) {
      const int a = ix.sole_reader(v, op);
      if (a < 0) continue;
      const ir::Node& n = ix.node(a);
      if (n.inputs.size() != 1 || n.outputs.size() != 1) return std::nullopt;
      std::string act = op;
      if (act == "Gelu") {
        const std::string approx = n.attr_string("approximate", "none");
        if (approx != "none" && approx != "tanh") return std::nullopt;
        if (approx == "tanh") act = "GeluTanh";
      }
      return Epilogue{{a}, "", act, n.outputs[0]};
    }
    if (ix.readers(v) != 2) return std::nullopt;
    for (int s = 0; s < ix.size(); ++s) {
      const ir::Node& sig = ix.node(s);
      if (ix.claimed(s) || !is_op(sig, "Sigmoid") || sig.inputs.size() != 1 || sig.inputs[0] != v)
        continue;
      const int mul = ix.sole_reader(sig.outputs[0], "Mul");
      if (mul < 0 || other_input(ix.node(mul), sig.outputs[0]) != v) return std::nullopt;
      return Epilogue{{s, mul}, "", "Silu", ix.node(mul).outputs[0]};
    }
    return std::nullopt;
  }

  static ir::Node fused_node(const PatternIndex& ix, const std::string& a, const std::string& b,
                             const Epilogue& e) {
    ir::Node n;
    n.name = ix.node(e.nodes.back()).name;
    n.domain = "kpt";
    n.op_type = "MatMulBiasAct";
    n.opset = 1;
    n.inputs = {a, b};
    if (!e.bias.empty()) n.inputs.push_back(e.bias);
    n.outputs = {e.output};
    n.attrs["activation"] = ir::Attribute::of_string("activation", e.activation);
    return n;
  }

  void match_matmul(ir::Graph& g, PatternIndex& ix, int mm) {
    const ir::Node& m = ix.node(mm);
    if (m.inputs.size() != 2 || m.outputs.size() != 1) return;
    auto w = weight_of(g, m.inputs[1]);
    if (!w) return;
    Epilogue e{{mm}, "", "", m.outputs[0]};
    if (int add = ix.sole_reader(e.output, "Add"); add >= 0) {
      auto bias = other_input(ix.node(add), e.output);
      if (bias && is_bias(g, *bias, *w, m.inputs[0])) {
        e.nodes.push_back(add);
        e.bias = *bias;
        e.output = ix.node(add).outputs[0];
      }
    }
    if (auto act = activation_after(ix, e.output)) {
      e.nodes.insert(e.nodes.end(), act->nodes.begin(), act->nodes.end());
      e.activation = act->activation;
      e.output = act->output;
    }
    if (e.nodes.size() == 1) return;  // a plain MatMul
    ix.replace(e.nodes, fused_node(ix, m.inputs[0], m.inputs[1], e));
  }

  // Gemm(A, B, C) with alpha = beta = 1 and A not transposed; a transposed B must be a constant,
  // which the Transpose emitted here lets constant folding turn into a [K, N] weight.
  void match_gemm(ir::Graph& g, PatternIndex& ix, int gi) {
    const ir::Node& n = ix.node(gi);
    if (n.inputs.size() < 2 || n.outputs.size() != 1) return;
    if (n.attr_float("alpha", 1.0f) != 1.0f || n.attr_int("transA", 0) != 0) return;
    const bool has_c = n.inputs.size() > 2 && !n.inputs[2].empty();
    if (has_c && n.attr_float("beta", 1.0f) != 1.0f) return;
    const bool trans_b = n.attr_int("transB", 0) != 0;
    const Tensor* wt = float_constant(g, n.inputs[1]);
    if (trans_b && (!wt || wt->rank() != 2)) return;
    std::optional<Weight> w;
    if (trans_b) {
      w = Weight{wt->dtype(), wt->dims()[0]};
    } else {
      w = weight_of(g, n.inputs[1]);
    }
    if (!w) return;
    Epilogue e{{gi}, "", "", n.outputs[0]};
    if (has_c) {
      // C broadcasts onto [M, N] without growing it; only a row vector is a bias.
      const Tensor* c = float_constant(g, n.inputs[2]);
      if (!c || c->dtype() != w->dtype || c->rank() == 0 || c->rank() > 2 ||
          (c->rank() == 2 && c->dims()[0] != 1) || w->n < 0 || c->dims().back() != w->n)
        return;
      e.bias = n.inputs[2];
    }
    if (auto act = activation_after(ix, e.output)) {
      e.nodes.insert(e.nodes.end(), act->nodes.begin(), act->nodes.end());
      e.activation = act->activation;
      e.output = act->output;
    }
    std::vector<ir::Node> fused;
    std::string b = n.inputs[1];
    if (trans_b) {
      ir::Node t;
      t.name = n.name + "_weight_transpose";
      t.op_type = "Transpose";
      t.opset = std::max(13, n.opset);
      t.inputs = {b};
      b = e.output + "_weight_kn";
      t.outputs = {b};
      t.attrs["perm"] = ir::Attribute::of_ints("perm", {1, 0});
      fused.push_back(std::move(t));
    }
    fused.push_back(fused_node(ix, n.inputs[0], b, e));
    ix.replace(e.nodes, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(56, FuseMatMulAdd);
}  // namespace kpt::passes
