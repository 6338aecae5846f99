// Fuses Conv (+ Add of a same-shape tensor, the residual branch) (+ Relu) into ONNX Runtime's
// com.microsoft FusedConv(X, W, B, Z) with activation "Relu" or "": one pass over the output
// instead of three, and the form the fast convolution kernels apply as post-ops.
#include <algorithm>

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

// Both values are float32 tensors of one shape that is provably the same (known dims or the
// same named symbols).
bool same_f32_shape(const ir::Graph& g, const std::string& a, const std::string& b) {
  const ir::Type* ta = g.type_of(a);
  const ir::Type* tb = g.type_of(b);
  if (!ta || !tb || ta->kind != ir::Type::Kind::Tensor || tb->kind != ir::Type::Kind::Tensor)
    return false;
  if (ta->elem != DType::F32 || tb->elem != DType::F32 || !ta->shape || !tb->shape) return false;
  if (*ta->shape != *tb->shape) return false;
  return std::all_of(ta->shape->begin(), ta->shape->end(),
                     [](const ir::Dim& d) { return d.known() || !d.symbol.empty(); });
}

bool is_f32(const ir::Graph& g, const std::string& v) {
  const ir::Type* t = g.type_of(v);
  return t && t->kind == ir::Type::Kind::Tensor && t->elem == DType::F32;
}

class FuseConvActivation : public Pass {
 public:
  std::string name() const override { return "fuse_conv_activation"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    bool has_conv = false;
    for (const auto& n : g.nodes) has_conv |= is_op(n, "Conv");
    if (!has_conv) return 0;
    try {
      analysis::infer_shapes(g);
    } catch (const Error&) {
      return 0;  // without types nothing is fused
    }
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "Conv")) continue;
      const ir::Node& conv = ix.node(i);
      if (conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
      // FusedConv is defined for float only; its kernels are float32.
      if (!is_f32(g, conv.outputs[0])) continue;
      std::vector<int> fused_nodes = {i};
      std::string out = conv.outputs[0];
      std::string z;
      const int add = ix.sole_reader(out, "Add");
      if (add >= 0) {
        auto other = other_input(ix.node(add), out);
        if (other && *other != out && same_f32_shape(g, out, *other) &&
            same_f32_shape(g, out, ix.node(add).outputs[0])) {
          z = *other;
          fused_nodes.push_back(add);
          out = ix.node(add).outputs[0];
        }
      }
      std::string activation;
      const int relu = ix.sole_reader(out, "Relu");
      if (relu >= 0) {
        activation = "Relu";
        fused_nodes.push_back(relu);
        out = ix.node(relu).outputs[0];
      }
      if (fused_nodes.size() == 1) continue;
      ir::Node fused = conv;
      fused.op_type = "FusedConv";
      fused.domain = "com.microsoft";
      fused.opset = 1;
      fused.name = ix.node(fused_nodes.back()).name;
      fused.inputs.resize(3);  // X, W, B ("" when absent)
      if (!z.empty()) fused.inputs.push_back(z);
      while (!fused.inputs.empty() && fused.inputs.back().empty()) fused.inputs.pop_back();
      fused.outputs = {out};
      fused.attrs["activation"] = ir::Attribute::of_string("activation", activation);
      if (ix.replace(fused_nodes, std::move(fused))) g.opsets.emplace("com.microsoft", 1);
    }
    return ix.apply(g);
  }
};

}  // namespace
KPT_REGISTER_PASS(42, FuseConvActivation);
}  // namespace kpt::passes
