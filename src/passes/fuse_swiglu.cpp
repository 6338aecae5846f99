// Fuses the gated MLP of Llama-style models, Mul(Silu(gate), up) with Silu written as
// gate * Sigmoid(gate), into one SwiGLU(gate, up) node (opset 28, alpha 1): one pass over the
// two projections instead of three elementwise nodes. SwiGLU does not broadcast, so gate and
// up must have one shape (inferred, symbolic dims compared by name). Runs before fuse_matmul_add,
// which would otherwise take the Silu into the gate projection's epilogue.
//
// The gate and up weights are not concatenated into one MatMul: SwiGLU takes its halves as two
// tensors, so a concatenated product would need a Split (a copy) to feed it, and two GEMMs of
// width N cost about what one of width 2N does.
#include <algorithm>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

class FuseSwiGlu : public Pass {
 public:
  std::string name() const override { return "fuse_swiglu"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    inferred_ = false;
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (!ix.claimed(i) && is_op(ix.node(i), "Sigmoid")) match(g, ix, i);
    }
    return ix.apply(g);
  }

 private:
  bool inferred_ = false;

  static const ir::Shape* shape_of(const ir::Graph& g, const std::string& v) {
    const ir::Type* t = g.type_of(v);
    if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return nullptr;
    return &*t->shape;
  }

  // True when a and b are known to have one shape; infers the graph's shapes once if needed.
  bool same_shape(ir::Graph& g, const std::string& a, const std::string& b) {
    if ((!shape_of(g, a) || !shape_of(g, b)) && !inferred_) {
      inferred_ = true;
      try {
        analysis::infer_shapes(g);
      } catch (const Error&) {
        // Without shapes nothing is fused.
      }
    }
    const ir::Shape *sa = shape_of(g, a), *sb = shape_of(g, b);
    if (!sa || !sb || sa->size() != sb->size()) return false;
    for (size_t k = 0; k < sa->size(); ++k) {
      if (!analysis::same_dim((*sa)[k], (*sb)[k])) return false;
    }
    return true;
  }

  void match(ir::Graph& g, PatternIndex& ix, int sig) {
    const ir::Node& s = ix.node(sig);
    if (s.inputs.size() != 1 || s.outputs.size() != 1) return;
    const std::string& gate = s.inputs[0];
    // gate feeds exactly the Sigmoid and the Mul by it.
    if (ix.readers(gate) != 2) return;
    const int silu = ix.sole_reader(s.outputs[0], "Mul");
    if (silu < 0 || other_input(ix.node(silu), s.outputs[0]) != gate) return;
    const int mul = ix.sole_reader(ix.node(silu).outputs[0], "Mul");
    if (mul < 0) return;
    auto up = other_input(ix.node(mul), ix.node(silu).outputs[0]);
    if (!up || *up == gate || !same_shape(g, gate, *up)) return;

    ir::Node fused;
    fused.name = ix.node(mul).name;
    fused.op_type = "SwiGLU";
    // SwiGLU entered the standard opset after the ops around it; the node carries its own.
    fused.opset = std::max(28, ix.node(mul).opset);
    fused.inputs = {gate, *up};
    fused.outputs = {ix.node(mul).outputs[0]};
    ix.replace({sig, silu, mul}, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(55, FuseSwiGlu);
}  // namespace kpt::passes
