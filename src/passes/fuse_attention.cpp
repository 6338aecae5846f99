// Fuses scaled dot-product attention written as MatMul(Q, Transpose(K)) -> [scale] -> Softmax ->
// MatMul(V) into one Attention node (opset 23). Q, K and V have the same rank: 4-D
// [batch, heads, seq, size], or 3-D [batch * heads, seq, size] (one head per batch entry,
// q_num_heads = kv_num_heads = 1). The scale (a constant Mul or Div on Q or on the scores)
// becomes the scale attribute. Scores with a mask added are left alone: the exporters' masks and
// NaN guards around Softmax do not map onto Attention exactly.
#include <algorithm>
#include <optional>

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

// A constant scaling `out = in * s` or `out = in / s`: the node, its other input and the factor.
struct Scaling {
  int node = -1;
  std::string input;
  double factor = 1;
};

std::optional<Scaling> scaling(const ir::Graph& g, const PatternIndex& ix, const std::string& v) {
  if (ix.readers(v) != 1) return std::nullopt;
  if (int div = ix.producer(v, "Div"); div >= 0) {
    const ir::Node& n = ix.node(div);
    auto c = n.inputs.size() == 2 ? scalar_constant(g, n.inputs[1]) : std::nullopt;
    if (!c || *c == 0) return std::nullopt;
    return Scaling{div, n.inputs[0], 1.0 / *c};
  }
  if (int mul = ix.producer(v, "Mul"); mul >= 0) {
    const ir::Node& n = ix.node(mul);
    if (n.inputs.size() != 2) return std::nullopt;
    for (size_t k = 0; k < 2; ++k) {
      auto c = scalar_constant(g, n.inputs[k]);
      if (c && !float_constant(g, n.inputs[1 - k])) return Scaling{mul, n.inputs[1 - k], *c};
    }
  }
  return std::nullopt;
}

bool name_taken(const ir::Graph& g, const std::string& name) {
  if (g.type_of(name) || g.initializers.count(name)) return true;
  for (const auto& i : g.inputs) {
    if (i.name == name) return true;
  }
  for (const auto& n : g.nodes) {
    for (const auto& o : n.outputs) {
      if (o == name) return true;
    }
  }
  return false;
}

// The first rank - 2 dims of `a` and `b` are known to be equal (same size or same symbol).
bool same_leading_dims(const ir::Graph& g, const std::string& a, const std::string& b,
                       int64_t rank) {
  const ir::Type* ta = g.type_of(a);
  const ir::Type* tb = g.type_of(b);
  if (!ta || !tb || !ta->shape || !tb->shape) return false;
  const auto& sa = *ta->shape;
  const auto& sb = *tb->shape;
  if (static_cast<int64_t>(sa.size()) != rank || static_cast<int64_t>(sb.size()) != rank)
    return false;
  for (size_t d = 0; d + 2 < sa.size(); ++d) {
    const bool known_equal =
        sa[d].known() ? sa[d] == sb[d] : !sa[d].symbol.empty() && sa[d].symbol == sb[d].symbol;
    if (!known_equal) return false;
  }
  return true;
}

class FuseAttention : public Pass {
 public:
  std::string name() const override { return "fuse_attention"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    bool inferred = false;
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "Softmax") || ix.node(i).opset < 13) continue;
      if (!inferred && !rank_of(g, ix.node(i).inputs[0])) {
        try {
          analysis::infer_shapes(g);
        } catch (const Error&) {
          // Without ranks nothing is fused.
        }
        inferred = true;
      }
      match(g, ix, i);
    }
    return ix.apply(g);
  }

 private:
  static void match(const ir::Graph& g, PatternIndex& ix, int softmax) {
    const ir::Node& sm = ix.node(softmax);
    if (sm.inputs.size() != 1 || sm.outputs.size() != 1) return;
    std::vector<int> nodes = {softmax};
    double scale = 1;
    std::string scores = sm.inputs[0];
    if (ix.producer(scores, "MatMul") < 0) {
      auto post = scaling(g, ix, scores);
      if (!post) return;
      nodes.push_back(post->node);
      scale *= post->factor;
      scores = post->input;
    }
    const int qk = ix.producer(scores, "MatMul");
    if (qk < 0 || ix.readers(scores) != 1) return;
    nodes.push_back(qk);
    std::string q = ix.node(qk).inputs[0];
    const std::string& kt = ix.node(qk).inputs[1];
    if (auto pre = scaling(g, ix, q)) {
      nodes.push_back(pre->node);
      scale *= pre->factor;
      q = pre->input;
    }
    const int tr = ix.producer(kt, "Transpose");
    if (tr < 0 || ix.readers(kt) != 1) return;
    nodes.push_back(tr);
    std::vector<int64_t> perm = ix.node(tr).attr_ints("perm");
    const auto rank = static_cast<int64_t>(perm.size());
    if (rank != 3 && rank != 4) return;
    const int64_t axis = sm.attr_int("axis", -1);
    if (axis != -1 && axis != rank - 1) return;
    const int pv = ix.sole_reader(sm.outputs[0], "MatMul");
    if (pv < 0 || ix.node(pv).inputs[0] != sm.outputs[0]) return;
    nodes.push_back(pv);
    const std::string& v = ix.node(pv).inputs[1];
    const std::string& k_src = ix.node(tr).inputs[0];
    if (rank_of(g, q) != rank || rank_of(g, v) != rank || rank_of(g, k_src) != rank) return;
    for (const auto& val : {q, v, k_src}) {
      const ir::Type* t = g.type_of(val);
      if (!t || (t->elem != DType::F32 && t->elem != DType::F64)) return;
    }
    // Attention applies sqrt(scale) to Q and K; it needs a positive scale.
    if (!(scale > 0)) return;

    // K = Transpose(k_src, perm with its last two entries swapped); none when that is identity.
    std::swap(perm[static_cast<size_t>(rank - 1)], perm[static_cast<size_t>(rank - 2)]);
    std::vector<ir::Node> fused;
    std::string k = k_src;
    bool identity = true;
    for (int64_t d = 0; d < rank; ++d) identity &= perm[static_cast<size_t>(d)] == d;
    // MatMul would broadcast batch and head dims; Attention needs them equal.
    const std::string& qk_out = ix.node(qk).outputs[0];
    if (!same_leading_dims(g, q, qk_out, rank) || !same_leading_dims(g, kt, qk_out, rank) ||
        !same_leading_dims(g, v, qk_out, rank)) {
      return;
    }
    if (!identity) {
      ir::Node t;
      t.name = ix.node(tr).name + "_key";
      t.op_type = "Transpose";
      t.opset = ix.node(tr).opset;
      t.inputs = {k_src};
      t.outputs = {kt + "_key"};
      t.attrs["perm"] = ir::Attribute::of_ints("perm", perm);
      k = t.outputs[0];
      if (name_taken(g, k)) return;
      fused.push_back(std::move(t));
    }
    ir::Node att;
    att.name = ix.node(pv).name;
    att.op_type = "Attention";
    att.opset = std::max(23, ix.node(pv).opset);
    att.inputs = {q, k, v};
    att.outputs = {ix.node(pv).outputs[0]};
    att.attrs["scale"] = ir::Attribute::of_float("scale", static_cast<float>(scale));
    if (rank == 3) {
      att.attrs["q_num_heads"] = ir::Attribute::of_int("q_num_heads", 1);
      att.attrs["kv_num_heads"] = ir::Attribute::of_int("kv_num_heads", 1);
    }
    fused.push_back(std::move(att));
    ix.replace(nodes, std::move(fused));
  }
};

}  // namespace
KPT_REGISTER_PASS(58, FuseAttention);
}  // namespace kpt::passes
