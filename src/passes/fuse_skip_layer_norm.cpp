// Fuses the residual add of a transformer block into the normalization that reads it:
//   LayerNormalization(Add(x, residual) [+ bias], axis -1) -> com.microsoft.SkipLayerNormalization
//   RMSNormalization(Add(x, residual) [+ bias], axis -1)   -> SkipSimplifiedLayerNormalization
// so that the sum is formed in the same pass over memory as the statistics. When other nodes
// read the sum too (pre-LN transformers carry it on as the residual stream) the fused node
// gives it out as its input_skip_bias_sum output under the same name. The addends must both
// have the sum's shape (no broadcasting: the contrib op's skip is a full tensor), gamma/beta
// and the bias are vectors over the hidden axis. Runs after fuse_layer_norm, fuse_rms_norm and
// fuse_matmul_add (which usually takes the bias into the GEMM already).
#include <algorithm>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

bool same_shape(const ir::Shape& a, const ir::Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (!analysis::same_dim(a[k], b[k])) return false;
  }
  return true;
}

const ir::Shape* shape_of(const ir::Graph& g, const std::string& v) {
  const ir::Type* t = g.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return nullptr;
  return &*t->shape;
}

class FuseSkipLayerNorm : public Pass {
 public:
  std::string name() const override { return "fuse_skip_layer_norm"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    inferred_ = false;
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i)) continue;
      if (is_op(ix.node(i), "LayerNormalization") || is_op(ix.node(i), "RMSNormalization"))
        match(g, ix, i);
    }
    const int fused = ix.apply(g);
    if (fused > 0) {
      if (!g.opsets.count("com.microsoft")) g.opsets["com.microsoft"] = 1;
      // A reader of the sum may sit between the Add and the normalization that now produces it.
      ir::sort_and_verify(g);
    }
    return fused;
  }

 private:
  bool inferred_ = false;

  const ir::Shape* shape(ir::Graph& g, const std::string& v) {
    if (const ir::Shape* s = shape_of(g, v); s || inferred_) return s;
    inferred_ = true;
    try {
      analysis::infer_shapes(g);
    } catch (const Error&) {
      // Without shapes nothing is fused.
    }
    return shape_of(g, v);
  }

  // A vector over the hidden axis: 1-D, of the hidden size.
  bool hidden_vector(ir::Graph& g, const std::string& v, const ir::Dim& hidden) {
    if (auto it = g.initializers.find(v); it != g.initializers.end()) {
      const Tensor& t = it->second;
      return t.rank() == 1 && analysis::same_dim(ir::Dim::of(t.dim(0)), hidden);
    }
    const ir::Shape* s = shape(g, v);
    return s && s->size() == 1 && analysis::same_dim((*s)[0], hidden);
  }

  void match(ir::Graph& g, PatternIndex& ix, int norm) {
    const ir::Node& n = ix.node(norm);
    const bool layer_norm = n.op_type == "LayerNormalization";
    if (n.inputs.size() < 2 || n.attr_int("stash_type", 1) != 1) return;
    const std::string& sum = n.inputs[0];
    const int add = ix.producer(sum, "Add");
    if (add < 0 || ix.node(add).inputs.size() != 2) return;
    const ir::Shape* s = shape(g, sum);
    if (!s || s->empty()) return;
    const int64_t axis = n.attr_int("axis", -1);
    if (axis != -1 && axis != static_cast<int64_t>(s->size()) - 1) return;
    const ir::Dim& hidden = s->back();
    if (!hidden_vector(g, n.inputs[1], hidden)) return;
    const bool has_beta = layer_norm && n.inputs.size() > 2 && !n.inputs[2].empty();
    if (has_beta && !hidden_vector(g, n.inputs[2], hidden)) return;

    std::vector<int> nodes = {add};
    std::string input = ix.node(add).inputs[0], skip = ix.node(add).inputs[1], bias;
    // A bias Add on one addend, read only here, joins as the bias input.
    for (std::string* addend : {&input, &skip}) {
      const int b = ix.producer(*addend, "Add");
      if (b < 0 || ix.readers(*addend) != 1 || ix.node(b).inputs.size() != 2) continue;
      for (size_t k = 0; k < 2; ++k) {
        const std::string& c = ix.node(b).inputs[k];
        const Tensor* t = float_constant(g, c);
        if (!t || !hidden_vector(g, c, hidden)) continue;
        bias = c;
        *addend = ix.node(b).inputs[1 - k];
        nodes.push_back(b);
        break;
      }
      if (!bias.empty()) break;
    }
    for (const std::string& v : {input, skip}) {
      const ir::Shape* vs = shape(g, v);
      if (!vs || !same_shape(*vs, *s)) return;
    }
    nodes.push_back(norm);

    ir::Node fused;
    fused.name = n.name;
    fused.domain = "com.microsoft";
    fused.op_type = layer_norm ? "SkipLayerNormalization" : "SkipSimplifiedLayerNormalization";
    fused.opset = 1;
    fused.inputs = {input, skip, n.inputs[1]};
    if (layer_norm) fused.inputs.push_back(has_beta ? n.inputs[2] : "");
    if (!bias.empty()) fused.inputs.push_back(bias);
    while (!fused.inputs.empty() && fused.inputs.back().empty()) fused.inputs.pop_back();
    // Outputs: normalized, then (LayerNormalization) mean and inverse std as the norm gave
    // them, then the sum when anything besides the norm reads it.
    fused.outputs = {n.outputs[0], "", ""};
    if (layer_norm) {
      for (size_t k = 1; k < 3 && k < n.outputs.size(); ++k) fused.outputs[k] = n.outputs[k];
    } else if (n.outputs.size() > 1) {
      return;
    }
    if (ix.readers(sum) > 1) {
      fused.outputs.push_back(sum);
    } else {
      while (fused.outputs.size() > 1 && fused.outputs.back().empty()) fused.outputs.pop_back();
    }
    const float eps = n.attr_float("epsilon", 1e-5f);
    fused.attrs["epsilon"] = ir::Attribute::of_float("epsilon", eps);
    ix.replace(nodes, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(61, FuseSkipLayerNorm);
}  // namespace kpt::passes
