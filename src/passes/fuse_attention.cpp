// Fuses scaled dot-product attention into one Attention node (opset 23):
//
//   MatMul(Q, Kᵀ) -> [scale] -> [masks] -> Softmax -> [NaN guard] -> MatMul(V)
//
// as the TorchScript exporter writes it (explicit Hugging Face style attention and
// nn.MultiheadAttention) and as the dynamo exporter decomposes scaled_dot_product_attention.
// Q, K and V are 4-D [batch, heads, seq, size] or 3-D [batch * heads, seq, size] (then one head
// per batch entry). What is matched on the way:
// - scaling: constant Mul/Div on Q, on Kᵀ (the dynamo exporter scales both by sqrt(scale)) or on
//   the scores; their product becomes the scale attribute;
// - Kᵀ: a Transpose of the last two axes, or the dynamo exporter's Reshape/Transpose/Reshape;
// - grouped-query attention: K and V repeated per group (Unsqueeze/Expand/Reshape, repeat_kv)
//   feed Attention unrepeated, with fewer heads than Q;
// - masks: additive (Add), and Where(keep, scores, very negative); a mask that keeps everything
//   is dropped, a provably causal one becomes is_causal=1 (fuse_attention_mask.hpp), the rest
//   become attn_mask (bool when it was Where(keep, 0, -inf)); several are combined with And or
//   Add;
// - the guard Where(IsNaN(p), 0, p) after Softmax: a row whose scores are all -inf is NaN after
//   Softmax and 0 after the guard, and Attention gives 0 for such a row too, so the guard goes.
//   Without a guard such a row changes from NaN to 0, the only difference this pass makes.
// Nodes on the path from the Q·Kᵀ MatMul to the output MatMul are replaced; what fed them and is
// read by nothing else any more is left to dead-code elimination.
#include <algorithm>
#include <cmath>
#include <optional>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "core/cast.hpp"
#include "kpt/error.hpp"
#include "passes/fuse_attention_mask.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

using attention::Values;

// Where(keep, scores, fill) drops a position only when exp(fill - max) is 0.
constexpr double kDropped = -1e30;

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

using attention::shape_of;

// Dims [from, to) of `a` and `b` are known to be equal.
bool same_dims(const ir::Graph& g, const std::string& a, const std::string& b, size_t from,
               size_t to) {
  const auto sa = shape_of(g, a);
  const auto sb = shape_of(g, b);
  if (!sa || !sb || sa->size() < to || sb->size() < to) return false;
  for (size_t d = from; d < to; ++d) {
    if (!analysis::same_dim((*sa)[d], (*sb)[d])) return false;
  }
  return true;
}

std::optional<size_t> rank(const ir::Graph& g, const std::string& v) {
  const auto s = shape_of(g, v);
  return s ? std::optional<size_t>(s->size()) : std::nullopt;
}

// One mask term on the scores: additive (a float tensor added), or Where(keep, scores, fill).
struct MaskTerm {
  std::string value;
  bool keep = false;
  double fill = 0;
};

// The path from the Q·Kᵀ MatMul to the Softmax input.
struct Scores {
  int qk = -1;
  std::vector<int> nodes;
  double scale = 1;
  std::vector<MaskTerm> masks;
};

// Follows the scores from `x` (the Softmax input) down to the Q·Kᵀ MatMul. `mult` is the
// product of the scalings between x and the Softmax: a mask added below them is scaled too.
bool descend(const ir::Graph& g, const PatternIndex& ix, const std::string& x, double mult,
             Scores& s, int depth) {
  if (depth > 8 || ix.readers(x) != 1) return false;
  if (int mm = ix.producer(x, "MatMul"); mm >= 0) {
    s.qk = mm;
    s.nodes.push_back(mm);
    return true;
  }
  if (auto sc = scaling(g, ix, x)) {
    if (!(sc->factor > 0)) return false;
    s.nodes.push_back(sc->node);
    s.scale *= sc->factor;
    return descend(g, ix, sc->input, mult * sc->factor, s, depth + 1);
  }
  if (int add = ix.producer(x, "Add"); add >= 0) {
    const ir::Node& n = ix.node(add);
    if (n.inputs.size() != 2) return false;
    for (size_t side = 0; side < 2; ++side) {
      Scores t = s;
      if (!descend(g, ix, n.inputs[side], mult, t, depth + 1)) continue;
      // nn.MultiheadAttention's baddbmm multiplies the mask by beta = 1.
      std::string mask = n.inputs[1 - side];
      double m = mult;
      if (auto sc = scaling(g, ix, mask); sc && std::abs(m * sc->factor - 1) <= 1e-6) {
        m *= sc->factor;
        mask = sc->input;
        t.nodes.push_back(sc->node);
      }
      if (std::abs(m - 1) > 1e-6) return false;
      t.masks.push_back({mask, false, 0});
      t.nodes.push_back(add);
      s = std::move(t);
      return true;
    }
    return false;
  }
  if (int where = ix.producer(x, "Where"); where >= 0) {
    const ir::Node& n = ix.node(where);
    auto fill = scalar_constant(g, n.inputs[2]);
    if (!fill || !(*fill * mult <= kDropped)) return false;
    if (!descend(g, ix, n.inputs[1], mult, s, depth + 1)) return false;
    s.masks.push_back({n.inputs[0], true, *fill});
    s.nodes.push_back(where);
    return true;
  }
  return false;
}

// K as Attention takes it ([.., seq, size]) from the Kᵀ operand of the scores MatMul.
struct Key {
  std::string source;         // the value K comes from
  std::vector<int64_t> perm;  // Transpose to apply to it, empty when none
};

std::optional<Key> key_of(const ir::Graph& g, const PatternIndex& ix, const std::string& kt) {
  if (int tr = ix.producer(kt, "Transpose"); tr >= 0) {
    std::vector<int64_t> perm = ix.node(tr).attr_ints("perm");
    if (perm.size() < 3) return std::nullopt;
    std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    bool identity = true;
    for (size_t d = 0; d < perm.size(); ++d) identity &= perm[d] == static_cast<int64_t>(d);
    if (identity) perm.clear();
    return Key{ix.node(tr).inputs[0], perm};
  }
  // Dynamo: Reshape(Transpose(Reshape(k, [-1, seq, size]), [0, 2, 1]), [b, h, size, seq]).
  const int r2 = ix.producer(kt, "Reshape");
  if (r2 < 0) return std::nullopt;
  const int tr = ix.producer(ix.node(r2).inputs[0], "Transpose");
  if (tr < 0 || ix.node(tr).attr_ints("perm") != std::vector<int64_t>{0, 2, 1}) return std::nullopt;
  const int r1 = ix.producer(ix.node(tr).inputs[0], "Reshape");
  if (r1 < 0) return std::nullopt;
  const std::string& k = ix.node(r1).inputs[0];
  const auto ks = shape_of(g, k);
  const auto flat = shape_of(g, ix.node(r1).outputs[0]);
  const auto out = shape_of(g, kt);
  if (!ks || !flat || !out || ks->size() < 3 || flat->size() != 3 || out->size() != ks->size())
    return std::nullopt;
  const size_t n = ks->size();
  // The first Reshape only merges the leading dims, the last one splits them back.
  if (!analysis::same_dim((*flat)[1], (*ks)[n - 2]) ||
      !analysis::same_dim((*flat)[2], (*ks)[n - 1]) ||
      !analysis::same_dim((*out)[n - 2], (*ks)[n - 1]) ||
      !analysis::same_dim((*out)[n - 1], (*ks)[n - 2]))
    return std::nullopt;
  for (size_t d = 0; d + 2 < n; ++d) {
    if (!analysis::same_dim((*out)[d], (*ks)[d])) return std::nullopt;
  }
  return Key{k, {}};
}

// repeat_kv: Reshape(Expand(Unsqueeze(x, 2), [b, kv, groups, s, d]), [b, kv * groups, s, d]).
// Returns x, which Attention takes with kv heads and repeats per group itself (head h reads
// kv head h / groups, as repeat_kv's layout does).
std::optional<std::string> unrepeated(const ir::Graph& g, const PatternIndex& ix,
                                      const std::string& v) {
  const int r = ix.producer(v, "Reshape");
  if (r < 0) return std::nullopt;
  const int e = ix.producer(ix.node(r).inputs[0], "Expand");
  if (e < 0) return std::nullopt;
  const int u = ix.producer(ix.node(e).inputs[0], "Unsqueeze");
  if (u < 0) return std::nullopt;
  const ir::Node& un = ix.node(u);
  std::vector<int64_t> axes = un.attr_ints("axes");
  if (un.inputs.size() > 1) {
    const Tensor* t = constant_initializer(g, un.inputs[1]);
    if (!t || is_float(t->dtype())) return std::nullopt;
    axes = t->to_i64_vector();
  }
  if (axes != std::vector<int64_t>{2} && axes != std::vector<int64_t>{-3}) return std::nullopt;
  const std::string& x = un.inputs[0];
  const auto xs = shape_of(g, x);
  const auto es = shape_of(g, ix.node(e).outputs[0]);
  const auto vs = shape_of(g, v);
  if (!xs || !es || !vs || xs->size() != 4 || es->size() != 5 || vs->size() != 4)
    return std::nullopt;
  const auto& X = *xs;
  const auto& E = *es;
  const auto& V = *vs;
  using analysis::same_dim;
  if (!same_dim(E[0], X[0]) || !same_dim(E[1], X[1]) || !same_dim(E[3], X[2]) ||
      !same_dim(E[4], X[3]) || !same_dim(V[0], X[0]) || !same_dim(V[2], X[2]) ||
      !same_dim(V[3], X[3]))
    return std::nullopt;
  if (!X[1].known() || !E[2].known() || !V[1].known() || V[1].value != X[1].value * E[2].value)
    return std::nullopt;
  return x;
}

// A node name and value names no other node uses.
std::string fresh(const ir::Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; name_taken(g, name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

class FuseAttention : public Pass {
 public:
  std::string name() const override { return "fuse_attention"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    PatternIndex ix(g);
    bool inferred = false;
    Values values;
    std::vector<std::string> reserved;
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "Softmax") || ix.node(i).opset < 13) continue;
      if (!inferred) {
        try {
          analysis::InferenceOptions o;
          o.values = &values;
          analysis::infer_shapes(g, o);
        } catch (const Error&) {
          // Without shapes nothing is fused.
        }
        inferred = true;
      }
      match(g, ix, values, reserved, i);
    }
    for (const auto& name : reserved) g.value_types.erase(name);
    return ix.apply(g);
  }

 private:
  // New nodes of one rewrite; their value names are reserved in the graph's value_types so
  // that two rewrites of one run do not pick the same name.
  struct Builder {
    ir::Graph& g;
    std::string base;
    std::vector<ir::Node> nodes;
    std::vector<std::string>& reserved;

    std::string add(const std::string& op, std::vector<std::string> inputs, int opset,
                    const std::string& suffix) {
      ir::Node n;
      n.op_type = op;
      n.opset = opset;
      n.inputs = std::move(inputs);
      n.name = fresh(g, base + "_" + suffix);
      n.outputs = {n.name};
      g.value_types[n.name] = ir::Type{};  // reserves the name until the rewrite is applied
      reserved.push_back(n.name);
      nodes.push_back(std::move(n));
      return nodes.back().outputs[0];
    }
    std::string constant(Tensor t, const std::string& suffix) {
      const std::string name = fresh(g, base + "_" + suffix);
      g.initializers[name] = std::move(t);
      return name;
    }
  };

  static Tensor scalar(DType t, double x) {
    Tensor s(DType::F32, {});
    s.data<float>()[0] = static_cast<float>(x);
    return t == DType::F32 ? s : cast_tensor(s, t);
  }

  static void match(ir::Graph& g, PatternIndex& ix, const Values& values,
                    std::vector<std::string>& reserved, int softmax) {
    const ir::Node& sm = ix.node(softmax);
    if (sm.inputs.size() != 1 || sm.outputs.size() != 1) return;
    Scores s;
    if (!descend(g, ix, sm.inputs[0], 1.0, s, 0)) return;
    const ir::Node& qk = ix.node(s.qk);
    const std::string& scores = qk.outputs[0];
    const auto r = rank(g, scores);
    if (!r || (*r != 3 && *r != 4)) return;
    const auto axis = sm.attr_int("axis", -1);
    if (axis != -1 && axis != static_cast<int64_t>(*r) - 1) return;
    std::vector<int> nodes = s.nodes;
    nodes.push_back(softmax);

    // Softmax -> [Where(IsNaN(p), 0, p)] -> MatMul(p, V).
    std::string probs = sm.outputs[0];
    if (ix.readers(probs) == 2) {
      int nan_node = -1;
      for (int j = 0; j < ix.size(); ++j) {
        const ir::Node& n = ix.node(j);
        if (ix.claimed(j) || n.inputs.empty() || n.inputs[0] != probs) continue;
        if (is_op(n, "IsNaN")) nan_node = j;
      }
      if (nan_node < 0) return;
      const int guard = ix.sole_reader(ix.node(nan_node).outputs[0], "Where");
      if (guard < 0) return;
      const ir::Node& w = ix.node(guard);
      auto zero = scalar_constant(g, w.inputs[1]);
      if (w.inputs[2] != probs || !zero || *zero != 0) return;
      nodes.push_back(nan_node);
      nodes.push_back(guard);
      probs = w.outputs[0];
    }
    const int pv = ix.sole_reader(probs, "MatMul");
    if (pv < 0 || ix.node(pv).inputs[0] != probs) return;
    nodes.push_back(pv);

    double scale = s.scale;
    std::string q = qk.inputs[0];
    if (auto sc = scaling(g, ix, q)) {
      scale *= sc->factor;
      q = sc->input;
    }
    std::string kt = qk.inputs[1];
    if (auto sc = scaling(g, ix, kt)) {
      scale *= sc->factor;
      kt = sc->input;
    }
    // Attention applies sqrt(scale) to Q and K; it needs a positive scale.
    if (!(scale > 0)) return;
    auto key = key_of(g, ix, kt);
    if (!key) return;
    std::string v = ix.node(pv).inputs[1];
    const size_t n = *r;
    for (const auto& val : {q, key->source, v}) {
      const auto t = attention::type_of(g, val);
      if (!t || (t->elem != DType::F32 && t->elem != DType::F64 && t->elem != DType::F16 &&
                 t->elem != DType::BF16))
        return;
      if (rank(g, val) != n) return;
    }
    // MatMul would broadcast batch and head dims; Attention needs them equal.
    if (!same_dims(g, q, scores, 0, n - 1) || !same_dims(g, kt, scores, 0, n - 2) ||
        !same_dims(g, v, scores, 0, n - 2)) {
      return;
    }
    if (!analysis::same_dim((*shape_of(g, v))[n - 2], (*shape_of(g, scores))[n - 1])) return;
    std::string k = key->source;
    if (n == 4 && key->perm.empty()) {
      auto k0 = unrepeated(g, ix, k);
      auto v0 = unrepeated(g, ix, v);
      if (k0 && v0 && same_dims(g, *k0, *v0, 1, 2)) {
        k = *k0;
        v = *v0;
      }
    }

    const ir::Node& out = ix.node(pv);
    Builder b{g, out.name.empty() ? out.outputs[0] : out.name, {}, reserved};
    if (!key->perm.empty()) {
      k = b.add("Transpose", {k}, ix.node(ix.producer(kt, "Transpose")).opset, "key");
      b.nodes.back().attrs["perm"] = ir::Attribute::of_ints("perm", key->perm);
    }
    bool is_causal = false;
    std::optional<std::string> mask;
    if (!masks(g, ix, values, s.masks, scores, b, is_causal, mask)) return;
    if (mask && n == 3 && rank(g, *mask).value_or(0) == 3) {
      // [N, Sq, Skv] over 3-D scores: Attention sees them as [N, 1 head, Sq, Skv].
      Tensor axes(DType::I64, {1});
      axes.data<int64_t>()[0] = 1;
      mask =
          b.add("Unsqueeze", {*mask, b.constant(std::move(axes), "mask_axes")}, 13, "mask_heads");
    }
    ir::Node att;
    att.name = out.name;
    att.op_type = "Attention";
    att.opset = std::max(23, out.opset);
    att.inputs = {q, k, v};
    if (mask) att.inputs.push_back(*mask);
    att.outputs = {out.outputs[0]};
    att.attrs["scale"] = ir::Attribute::of_float("scale", static_cast<float>(scale));
    if (is_causal) att.attrs["is_causal"] = ir::Attribute::of_int("is_causal", 1);
    if (n == 3) {
      att.attrs["q_num_heads"] = ir::Attribute::of_int("q_num_heads", 1);
      att.attrs["kv_num_heads"] = ir::Attribute::of_int("kv_num_heads", 1);
    }
    std::vector<ir::Node> fused = std::move(b.nodes);
    fused.push_back(std::move(att));
    ix.replace(nodes, std::move(fused));
  }

  // What one mask term contributes: nothing, causality, a bool keep mask or an additive one.
  struct Part {
    enum Kind { Causal, Keep, Additive } kind;
    std::string value;
    double fill = 0;  // for Keep: the value dropped positions get
  };

  // Splits `term` into parts; false when it cannot be used as an Attention mask.
  static bool parts(const ir::Graph& g, const PatternIndex& ix, const Values& values,
                    const MaskTerm& term, const std::string& scores, std::vector<Part>& out) {
    // nn.MultiheadAttention's baddbmm multiplies the mask by beta = 1 (a node that common
    // subexpression elimination may have shared between layers).
    if (int m = ix.producer(term.value, "Mul"); m >= 0 && !term.keep) {
      const ir::Node& n = ix.node(m);
      for (size_t k = 0; k < 2 && n.inputs.size() == 2; ++k) {
        if (is_scalar_near(g, n.inputs[k], 1.0, 0.0))
          return parts(g, ix, values, {n.inputs[1 - k], false, 0}, scores, out);
      }
    }
    const auto t = attention::type_of(g, term.value);
    if (!t) return false;
    if (!term.keep) {
      if (attention::all_zero(g, ix, term.value)) return true;
      // Where(keep, 0, fill) added to the scores is Where(keep, scores, fill).
      if (int w = ix.producer(term.value, "Where"); w >= 0) {
        const ir::Node& n = ix.node(w);
        auto zero = scalar_constant(g, n.inputs[1]);
        auto fill = scalar_constant(g, n.inputs[2]);
        if (zero && *zero == 0 && fill && *fill <= kDropped)
          return parts(g, ix, values, {n.inputs[0], true, *fill}, scores, out);
      }
      if (!is_float(t->elem) || !attention::fits(g, term.value, scores)) return false;
      if (attention::causal(g, ix, values, term.value, false) && exact_rows(g, term, scores)) {
        out.push_back({Part::Causal, term.value});
      } else {
        out.push_back({Part::Additive, term.value});
      }
      return true;
    }
    if (t->elem != DType::Bool) return false;
    if (attention::all_true(g, ix, term.value)) return true;
    if (attention::causal(g, ix, values, term.value, true) && exact_rows(g, term, scores)) {
      out.push_back({Part::Causal, term.value});
      return true;
    }
    if (int a = ix.producer(term.value, "And"); a >= 0) {
      std::vector<Part> split;
      bool ok = true;
      for (const auto& in : ix.node(a).inputs)
        ok = ok && parts(g, ix, values, {in, true, term.fill}, scores, split);
      if (ok) {
        out.insert(out.end(), split.begin(), split.end());
        return true;
      }
    }
    if (!attention::fits(g, term.value, scores)) return false;
    out.push_back({Part::Keep, term.value, term.fill});
    return true;
  }

  // A causal mask replaced by is_causal must span the scores' last two dims exactly: a
  // broadcast row or column of a triangle is not causal.
  static bool exact_rows(const ir::Graph& g, const MaskTerm& term, const std::string& scores) {
    const auto m = shape_of(g, term.value);
    const auto s = shape_of(g, scores);
    if (!m || !s || m->size() < 2) return false;
    return analysis::same_dim((*m)[m->size() - 2], (*s)[s->size() - 2]) &&
           analysis::same_dim((*m)[m->size() - 1], (*s)[s->size() - 1]);
  }

  // Turns the mask terms into is_causal and at most one attn_mask value (new nodes in b).
  static bool masks(ir::Graph& g, const PatternIndex& ix, const Values& values,
                    const std::vector<MaskTerm>& terms, const std::string& scores, Builder& b,
                    bool& is_causal, std::optional<std::string>& mask) {
    std::vector<Part> all;
    for (const auto& t : terms) {
      if (!parts(g, ix, values, t, scores, all)) return false;
    }
    const DType elem = attention::type_of(g, scores)->elem;
    std::vector<std::string> keeps, adds;
    const bool causal_part =
        std::any_of(all.begin(), all.end(), [](const Part& p) { return p.kind == Part::Causal; });
    for (const auto& p : all) {
      if (p.kind == Part::Causal) {
        is_causal = true;
      } else if (p.kind == Part::Keep && (std::isinf(p.fill) || causal_part)) {
        keeps.push_back(p.value);
      } else if (p.kind == Part::Keep) {
        // A finite fill keeps a fully masked row uniform, as Softmax of equal values: an
        // additive mask of that fill does the same, a bool mask would give zeros. Next to
        // is_causal no mask can keep that (causal positions become -inf), so there the keep
        // mask goes in as bool: fully masked rows (left-padded queries) become zeros.
        adds.push_back(b.add("Where",
                             {p.value, b.constant(scalar(elem, 0), "zero"),
                              b.constant(scalar(elem, p.fill), "fill")},
                             16, "mask_fill"));
      } else if (attention::type_of(g, p.value)->elem == elem) {
        adds.push_back(p.value);
      } else {
        return false;
      }
    }
    std::optional<std::string> keep;
    for (const auto& k : keeps) keep = keep ? b.add("And", {*keep, k}, 7, "mask_and") : k;
    if (keep && !adds.empty()) {
      adds.push_back(b.add(
          "Where",
          {*keep, b.constant(scalar(elem, 0), "zero"), b.constant(scalar(elem, -INFINITY), "ninf")},
          16, "mask_bias"));
      keep.reset();
    }
    std::optional<std::string> add;
    for (const auto& a : adds) add = add ? b.add("Add", {*add, a}, 14, "mask_add") : a;
    mask = keep ? keep : add;
    return true;
  }
};

}  // namespace
KPT_REGISTER_PASS(58, FuseAttention);
}  // namespace kpt::passes
