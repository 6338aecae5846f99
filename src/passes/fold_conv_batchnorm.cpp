// Folds an inference-mode BatchNormalization that alone reads a Conv's output into the Conv's
// weights and bias: BN(conv(x, W) + B) = conv(x, W * s) + (B - mean) * s + beta with
// s = gamma / sqrt(var + epsilon) per output channel. Exporters leave this pair in every CNN
// exported from training code; folding removes a full pass over each activation.
#include <cmath>
#include <set>

#include "passes/pass.hpp"
#include "passes/pattern.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

// A float32 constant with exactly `n` elements (a per-channel vector), else nullptr.
const Tensor* channel_vector(const ir::Graph& g, const std::string& name, int64_t n) {
  const Tensor* t = name.empty() ? nullptr : constant_initializer(g, name);
  if (!t || t->dtype() != DType::F32 || t->numel() != n) return nullptr;
  return t;
}

// A value name based on `base` that is not in `taken`; adds it there.
std::string fresh_name(std::set<std::string>& taken, const std::string& base) {
  std::string name = base;
  for (int k = 1; taken.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
  taken.insert(name);
  return name;
}

class FoldConvBatchNorm : public Pass {
 public:
  std::string name() const override { return "fold_conv_batchnorm"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    std::set<std::string> taken;
    bool named = false;
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "Conv")) continue;
      const ir::Node& conv = ix.node(i);
      if (conv.inputs.size() < 2 || conv.outputs.size() != 1) continue;
      const Tensor* w = constant_initializer(g, conv.inputs[1]);
      if (!w || w->dtype() != DType::F32 || w->rank() < 3) continue;
      const int64_t m = w->dim(0);
      const Tensor* b = nullptr;
      if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
        b = channel_vector(g, conv.inputs[2], m);
        if (!b) continue;
      }
      const int bn_i = ix.sole_reader(conv.outputs[0], "BatchNormalization");
      if (bn_i < 0) continue;
      const ir::Node& bn = ix.node(bn_i);
      if (bn.inputs.size() != 5 || bn.inputs[0] != conv.outputs[0]) continue;
      // Training mode (an attribute from opset 14, extra outputs before) uses batch statistics.
      if (bn.attr_int("training_mode", 0) != 0) continue;
      bool extra_outputs = false;
      for (size_t k = 1; k < bn.outputs.size(); ++k) extra_outputs |= !bn.outputs[k].empty();
      if (extra_outputs || bn.outputs.empty()) continue;
      const Tensor* gamma = channel_vector(g, bn.inputs[1], m);
      const Tensor* beta = channel_vector(g, bn.inputs[2], m);
      const Tensor* mean = channel_vector(g, bn.inputs[3], m);
      const Tensor* var = channel_vector(g, bn.inputs[4], m);
      if (!gamma || !beta || !mean || !var) continue;
      const double eps = bn.attr_float("epsilon", 1e-5f);

      Tensor new_w = w->clone();
      Tensor new_b(DType::F32, {m});
      const int64_t per = w->numel() / m;
      for (int64_t c = 0; c < m; ++c) {
        const double s = static_cast<double>(gamma->data<float>()[c]) /
                         std::sqrt(static_cast<double>(var->data<float>()[c]) + eps);
        float* wc = new_w.data<float>() + c * per;
        for (int64_t k = 0; k < per; ++k) wc[k] = static_cast<float>(wc[k] * s);
        const double bias = b ? b->data<float>()[c] : 0.0;
        new_b.data<float>()[c] =
            static_cast<float>((bias - mean->data<float>()[c]) * s + beta->data<float>()[c]);
      }
      ir::Node fused = conv;
      fused.name = conv.name.empty() ? bn.name : conv.name;
      if (!named) {
        for (auto& v : g.defined_values()) taken.insert(v);
        named = true;
      }
      const std::string w_name = fresh_name(taken, conv.inputs[1] + "_bn_folded");
      const std::string b_name = fresh_name(taken, w_name + "_bias");
      fused.inputs = {conv.inputs[0], w_name, b_name};
      fused.outputs = {bn.outputs[0]};
      if (!ix.replace({i, bn_i}, std::move(fused))) continue;
      // Weights get new names: the originals may be shared with other nodes.
      g.initializers[w_name] = std::move(new_w);
      g.initializers[b_name] = std::move(new_b);
    }
    return ix.apply(g);
  }
};

}  // namespace
KPT_REGISTER_PASS(40, FoldConvBatchNorm);
}  // namespace kpt::passes
