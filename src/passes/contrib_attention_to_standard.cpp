// Rewrites ONNX Runtime's com.microsoft MultiHeadAttention and RotaryEmbedding (what
// `kpt export` writes in contrib mode, and what ONNX Runtime's optimizer leaves in models) into
// the ONNX Attention / RotaryEmbedding (23) nodes that kpt's fast CPU kernels run, where the
// two compute the same:
// - MultiHeadAttention with a 3-D query, 3-D or 4-D key/value (4-D ones are turned into
//   (B, L, N*H) by Transpose + Reshape), an optional attention_bias, and `unidirectional` only
//   when the query and key lengths are the same (ONNX Runtime's causal mask matches is_causal
//   there). No bias, key_padding_mask or KV cache.
// - RotaryEmbedding with (batch, seq) position ids, num_heads and rotary_embedding_dim given
//   and caches rotary_embedding_dim/2 wide (then both take the same head size and cache rows).
// The rest stays with the contrib reference kernels (src/ops/fused/contrib_attention.cpp).
#include <set>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"

namespace kpt::passes {
namespace {

bool given(const ir::Node& n, size_t i) {
  return i < n.inputs.size() && !n.inputs[i].empty();
}

bool contrib(const ir::Node& n, const char* op) {
  return n.domain == "com.microsoft" && n.op_type == op;
}

class ContribAttentionToStandard : public Pass {
 public:
  std::string name() const override { return "contrib_attention_to_standard"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    bool any = false;
    for (const auto& n : g.nodes) {
      any = any || contrib(n, "MultiHeadAttention") || contrib(n, "RotaryEmbedding");
    }
    if (!any) return 0;
    try {
      analysis::infer_shapes(g);
    } catch (const Error&) {
      // Rewrites that need a shape are skipped.
    }
    taken_.clear();
    for (const auto& v : g.defined_values()) taken_.insert(v);
    for (const auto& [v, t] : g.value_types) taken_.insert(v);
    int rewrites = 0;
    std::vector<ir::Node> out;
    for (auto& n : g.nodes) {
      std::vector<ir::Node> made;
      if (contrib(n, "MultiHeadAttention")) made = attention(g, n);
      if (contrib(n, "RotaryEmbedding")) made = rotary(g, n);
      if (made.empty()) {
        out.push_back(std::move(n));
        continue;
      }
      ++rewrites;
      for (auto& m : made) out.push_back(std::move(m));
    }
    g.nodes = std::move(out);
    ir::sort_and_verify(g);
    return rewrites;
  }

 private:
  std::set<std::string> taken_;

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; taken_.count(name) != 0; ++i) name = base + "_" + std::to_string(i);
    taken_.insert(name);
    return name;
  }

  // The shape of a value (an initializer's or an inferred one) when known.
  static std::optional<ir::Shape> dims(const ir::Graph& g, const std::string& v) {
    if (auto it = g.initializers.find(v); it != g.initializers.end())
      return analysis::shape_of_dims(it->second.dims());
    const ir::Type* t = g.type_of(v);
    if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return std::nullopt;
    return *t->shape;
  }

  // (B, N, L, H) -> (B, L, N * H) as Transpose + Reshape.
  void merge_heads(ir::Graph& g, const ir::Node& n, std::string& x, std::vector<ir::Node>& made) {
    ir::Node t;
    t.op_type = "Transpose";
    t.opset = 13;
    t.name = fresh(n.name + "_" + x + "_bsnh");
    t.inputs = {x};
    t.outputs = {fresh(t.name)};
    t.attrs["perm"] = ir::Attribute::of_ints("perm", {0, 2, 1, 3});
    Tensor shape(DType::I64, {3});
    shape.data<int64_t>()[0] = 0;
    shape.data<int64_t>()[1] = 0;
    shape.data<int64_t>()[2] = -1;
    const std::string shape_name = fresh(n.name + "_merged_shape");
    g.initializers[shape_name] = shape;
    ir::Node r;
    r.op_type = "Reshape";
    r.opset = 14;
    r.name = fresh(n.name + "_" + x + "_bsd");
    r.inputs = {t.outputs[0], shape_name};
    r.outputs = {fresh(r.name)};
    x = r.outputs[0];
    made.push_back(std::move(t));
    made.push_back(std::move(r));
  }

  std::vector<ir::Node> attention(ir::Graph& g, const ir::Node& n) {
    if (n.inputs.size() < 3 || !given(n, 1) || !given(n, 2)) return {};
    for (size_t i : {3, 4, 6, 7, 8, 9}) {
      if (given(n, i)) return {};
    }
    for (size_t o = 1; o < n.outputs.size(); ++o) {
      if (!n.outputs[o].empty()) return {};
    }
    const int64_t heads = n.attr_int("num_heads", 0);
    const auto q = dims(g, n.inputs[0]), k = dims(g, n.inputs[1]), v = dims(g, n.inputs[2]);
    if (heads <= 0 || !q || q->size() != 3 || !k || !v || k->size() != v->size()) return {};
    if (k->size() != 3 && k->size() != 4) return {};
    const ir::Dim& kv_seq = (*k)[k->size() == 4 ? 2 : 1];
    const bool causal = n.attr_int("unidirectional", 0) != 0;
    if (causal && !analysis::same_dim((*q)[1], kv_seq)) return {};
    std::vector<ir::Node> made;
    std::string key = n.inputs[1], value = n.inputs[2];
    if (k->size() == 4) {
      merge_heads(g, n, key, made);
      merge_heads(g, n, value, made);
    }
    ir::Node att;
    att.op_type = "Attention";
    att.opset = 23;
    att.name = n.name;
    att.inputs = {n.inputs[0], key, value};
    if (given(n, 5)) att.inputs.push_back(n.inputs[5]);
    att.outputs = {n.outputs.at(0)};
    att.attrs["q_num_heads"] = ir::Attribute::of_int("q_num_heads", heads);
    att.attrs["kv_num_heads"] = ir::Attribute::of_int("kv_num_heads", heads);
    if (const float scale = n.attr_float("scale", 0.0f); scale != 0.0f)
      att.attrs["scale"] = ir::Attribute::of_float("scale", scale);
    if (causal) att.attrs["is_causal"] = ir::Attribute::of_int("is_causal", 1);
    made.push_back(std::move(att));
    return made;
  }

  std::vector<ir::Node> rotary(const ir::Graph& g, const ir::Node& n) {
    if (n.inputs.size() != 4 || n.attr_int("is_packed_batching", 0) != 0) return {};
    const int64_t heads = n.attr_int("num_heads", 0), rot = n.attr_int("rotary_embedding_dim", 0);
    const auto x = dims(g, n.inputs[0]), pos = dims(g, n.inputs[1]), cos = dims(g, n.inputs[2]);
    if (heads <= 0 || rot <= 0 || !x || (x->size() != 3 && x->size() != 4)) return {};
    if (!pos || pos->size() != 2 || !cos || cos->size() != 2) return {};
    if (!analysis::same_dim((*cos)[1], ir::Dim::of(rot / 2))) return {};
    if (x->size() == 4 && !analysis::same_dim((*x)[1], ir::Dim::of(heads))) return {};
    ir::Node r;
    r.op_type = "RotaryEmbedding";
    r.opset = 23;
    r.name = n.name;
    r.inputs = {n.inputs[0], n.inputs[2], n.inputs[3], n.inputs[1]};
    r.outputs = {n.outputs.at(0)};
    r.attrs["interleaved"] = ir::Attribute::of_int("interleaved", n.attr_int("interleaved", 0));
    r.attrs["rotary_embedding_dim"] = ir::Attribute::of_int("rotary_embedding_dim", rot);
    if (x->size() == 3) r.attrs["num_heads"] = ir::Attribute::of_int("num_heads", heads);
    return {r};
  }
};

}  // namespace
KPT_REGISTER_PASS(57, ContribAttentionToStandard);

}  // namespace kpt::passes
