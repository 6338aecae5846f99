// Fuses the rotary position embedding that Hugging Face models write with rotate_half,
//   y = x * Unsqueeze(cos, 1) + Concat(-x[..., h:], x[..., :h]) * Unsqueeze(sin, 1)
// with cos = Cos(Concat(f, f)) and sin = Sin(Concat(f, f)) for the angles f [b, seq, h]
// (positions times inverse frequencies, as the dynamo exporter computes them), into one
// RotaryEmbedding (opset 23, non-interleaved) on x [batch, heads, seq, 2h].
//
// RotaryEmbedding reads one angle per pair, so its caches are Cos(f) and Sin(f) themselves:
// the Concat(f, f) duplication is what makes rotate_half pair element i with i + h. When f has
// the batch dim of x, they go in as [batch, seq, h] caches without position ids. When f has
// batch 1 (one set of positions broadcast over the batch, the Llama export) they become
// [seq, h] caches indexed by position ids [batch, seq] that count 0..seq-1 on every row, which
// reads row s for element s just as the broadcast did. The nodes making caches and position
// ids are built once per f and shared by every rotary that uses it.
#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

const ir::Shape* shape_of(const ir::Graph& g, const std::string& v) {
  const ir::Type* t = g.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return nullptr;
  return &*t->shape;
}

// The integers of a constant input, nullopt when it is not a constant.
std::optional<std::vector<int64_t>> const_ints(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return std::nullopt;
  const Tensor* t = constant_initializer(g, n.inputs[i]);
  if (!t || is_float(t->dtype())) return std::nullopt;
  return t->to_i64_vector();
}

bool is_last_axis(int64_t axis, int64_t rank) {
  return axis == -1 || axis == rank - 1;
}

// [start, end) of a unit-step Slice of the last axis of a rank-`rank` tensor.
std::optional<std::pair<int64_t, int64_t>> last_axis_slice(const ir::Graph& g, const ir::Node& s,
                                                           int64_t rank) {
  if (s.inputs.size() < 4) return std::nullopt;
  auto starts = const_ints(g, s, 1), ends = const_ints(g, s, 2), axes = const_ints(g, s, 3);
  if (!starts || !ends || !axes || starts->size() != 1 || ends->size() != 1 || axes->size() != 1)
    return std::nullopt;
  if (!is_last_axis((*axes)[0], rank)) return std::nullopt;
  if (s.inputs.size() > 4 && !s.inputs[4].empty()) {
    auto steps = const_ints(g, s, 4);
    if (!steps || *steps != std::vector<int64_t>{1}) return std::nullopt;
  }
  return std::pair{(*starts)[0], (*ends)[0]};
}

// The source of Unsqueeze(src, axes = [1]).
std::optional<std::string> unsqueezed_at_1(const ir::Graph& g, const PatternIndex& ix,
                                           const std::string& v) {
  const int u = ix.producer(v, "Unsqueeze");
  if (u < 0) return std::nullopt;
  const ir::Node& n = ix.node(u);
  auto axes = n.inputs.size() > 1 ? const_ints(g, n, 1) : std::optional(n.attr_ints("axes"));
  if (!axes || *axes != std::vector<int64_t>{1}) return std::nullopt;
  return n.inputs[0];
}

// f when v = op(Concat(f, f, axis = last)).
std::optional<std::string> of_duplicated(const PatternIndex& ix, const std::string& v,
                                         const char* op) {
  const int c = ix.producer(v, op);
  if (c < 0 || ix.node(c).inputs.size() != 1) return std::nullopt;
  const int cat = ix.producer(ix.node(c).inputs[0], "Concat");
  if (cat < 0) return std::nullopt;
  const ir::Node& n = ix.node(cat);
  if (n.inputs.size() != 2 || n.inputs[0] != n.inputs[1]) return std::nullopt;
  if (!is_last_axis(n.attr_int("axis", 0), 3)) return std::nullopt;
  return n.inputs[0];
}

ir::Node make(std::string op, std::vector<std::string> in, std::string out, int opset) {
  ir::Node n;
  n.name = out + "_node";
  n.op_type = std::move(op);
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = {std::move(out)};
  return n;
}

class FuseRotary : public Pass {
 public:
  std::string name() const override { return "fuse_rotary"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    inferred_ = false;
    caches_.clear();
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (!ix.claimed(i) && is_op(ix.node(i), "Add")) match(g, ix, i);
    }
    const int fused = ix.apply(g);
    // Shared cache and position-id nodes sit with the first rotary; sort puts them first.
    if (fused > 0) ir::sort_and_verify(g);
    return fused;
  }

 private:
  // Caches (and position ids) made for one angle tensor f.
  struct Caches {
    std::string cos, sin, positions;  // positions empty for [batch, seq, h] caches
    ir::Dim batch, seq;               // of the x the position ids were made for
    bool emitted = false;
  };
  bool inferred_ = false;
  std::map<std::string, Caches> caches_;

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

  void match(ir::Graph& g, PatternIndex& ix, int add) {
    const ir::Node& a = ix.node(add);
    if (a.inputs.size() != 2) return;
    for (int side = 0; side < 2; ++side) {
      if (match_sides(g, ix, add, a.inputs[static_cast<size_t>(side)],
                      a.inputs[static_cast<size_t>(1 - side)]))
        return;
    }
  }

  // xc = x * C, rs = Concat(-x2, x1) * S.
  bool match_sides(ir::Graph& g, PatternIndex& ix, int add, const std::string& xc,
                   const std::string& rs) {
    const int m1 = ix.producer(xc, "Mul"), m2 = ix.producer(rs, "Mul");
    if (m1 < 0 || m2 < 0 || ix.readers(xc) != 1 || ix.readers(rs) != 1) return false;
    // Find the Concat operand of m2.
    int cat = -1;
    std::string s_factor;
    for (size_t k = 0; k < 2 && k < ix.node(m2).inputs.size(); ++k) {
      const std::string& v = ix.node(m2).inputs[k];
      if (int c = ix.producer(v, "Concat"); c >= 0 && ix.readers(v) == 1) {
        cat = c;
        s_factor = ix.node(m2).inputs[1 - k];
      }
    }
    if (cat < 0 || ix.node(m2).inputs.size() != 2) return false;
    const ir::Node& c = ix.node(cat);
    if (c.inputs.size() != 2 || !is_last_axis(c.attr_int("axis", 0), 4)) return false;
    const int neg = ix.producer(c.inputs[0], "Neg");
    const int s1 = ix.producer(c.inputs[1], "Slice");
    if (neg < 0 || s1 < 0 || ix.readers(c.inputs[0]) != 1 || ix.readers(c.inputs[1]) != 1)
      return false;
    const int s2 = ix.producer(ix.node(neg).inputs[0], "Slice");
    if (s2 < 0 || ix.readers(ix.node(neg).inputs[0]) != 1) return false;
    const std::string& x = ix.node(s1).inputs[0];
    if (ix.node(s2).inputs[0] != x) return false;
    auto c_factor = other_input(ix.node(m1), x);
    if (!c_factor) return false;

    // x is [batch, heads, seq, 2h]; the slices take its halves.
    const ir::Shape* xs = shape(g, x);
    if (!xs || xs->size() != 4 || !xs->back().known() || xs->back().value % 2 != 0) return false;
    const int64_t hd = xs->back().value, h = hd / 2;
    auto first = last_axis_slice(g, ix.node(s1), 4), second = last_axis_slice(g, ix.node(s2), 4);
    if (!first || !second || first->first != 0 || first->second != h || second->first != h ||
        second->second < hd)
      return false;

    // C = Unsqueeze(Cos(Concat(f, f)), 1), S = Unsqueeze(Sin(Concat(f, f)), 1), one f.
    auto cos_src = unsqueezed_at_1(g, ix, *c_factor), sin_src = unsqueezed_at_1(g, ix, s_factor);
    if (!cos_src || !sin_src) return false;
    auto f = of_duplicated(ix, *cos_src, "Cos"), f_sin = of_duplicated(ix, *sin_src, "Sin");
    if (!f || f != f_sin) return false;
    const ir::Shape* fs = shape(g, *f);
    if (!fs || fs->size() != 3 || !analysis::same_dim((*fs)[2], ir::Dim::of(h)) ||
        !analysis::same_dim((*fs)[1], (*xs)[2]))
      return false;
    const bool per_batch = analysis::same_dim((*fs)[0], (*xs)[0]);
    if (!per_batch && !analysis::same_dim((*fs)[0], ir::Dim::of(1))) return false;

    auto [it, fresh] = caches_.try_emplace(*f);
    Caches& caches = it->second;
    if (fresh) {
      caches.cos = *f + "_rotary_cos";
      caches.sin = *f + "_rotary_sin";
      if (!per_batch) caches.positions = *f + "_rotary_position_ids";
      caches.batch = (*xs)[0];
      caches.seq = (*xs)[2];
    } else if (caches.positions.empty() != per_batch ||
               (!per_batch && (!analysis::same_dim(caches.batch, (*xs)[0]) ||
                               !analysis::same_dim(caches.seq, (*xs)[2])))) {
      return false;
    }
    std::vector<ir::Node> fused;
    if (!caches.emitted) fused = cache_nodes(g, *f, x, caches, ix.node(add).opset);

    ir::Node rot;
    rot.name = ix.node(add).name;
    rot.op_type = "RotaryEmbedding";
    rot.opset = std::max(23, ix.node(add).opset);
    rot.inputs = {x, caches.cos, caches.sin};
    if (!per_batch) rot.inputs.push_back(caches.positions);
    rot.outputs = {ix.node(add).outputs[0]};
    rot.attrs["interleaved"] = ir::Attribute::of_int("interleaved", 0);
    fused.push_back(std::move(rot));
    if (!ix.replace({m1, s1, s2, neg, cat, m2, add}, std::move(fused))) return false;
    caches.emitted = true;
    return true;
  }

  // Cos(f), Sin(f) as [batch, seq, h] caches; with position ids, f's batch dim of 1 is
  // squeezed away and ids [batch, seq] counting 0..seq-1 are built from x's shape.
  static std::vector<ir::Node> cache_nodes(ir::Graph& g, const std::string& f, const std::string& x,
                                           const Caches& c, int opset) {
    opset = std::max(opset, 15);  // Shape with start/end
    std::vector<ir::Node> nodes;
    std::string angles = f;
    const std::string axis0 = f + "_rotary_axis0";
    if (!c.positions.empty()) {
      Tensor zero_axis(DType::I64, {1});
      zero_axis.data<int64_t>()[0] = 0;
      g.initializers[axis0] = zero_axis;
      angles = f + "_rotary_angles";
      nodes.push_back(make("Squeeze", {f, axis0}, angles, opset));
    }
    nodes.push_back(make("Cos", {angles}, c.cos, opset));
    nodes.push_back(make("Sin", {angles}, c.sin, opset));
    if (c.positions.empty()) return nodes;

    const std::string p = c.positions;
    g.initializers[p + "_zero"] = Tensor::scalar<int64_t>(DType::I64, 0);
    g.initializers[p + "_one"] = Tensor::scalar<int64_t>(DType::I64, 1);
    ir::Node batch = make("Shape", {x}, p + "_batch", opset);
    batch.attrs["start"] = ir::Attribute::of_int("start", 0);
    batch.attrs["end"] = ir::Attribute::of_int("end", 1);
    ir::Node seq = make("Shape", {x}, p + "_seq", opset);
    seq.attrs["start"] = ir::Attribute::of_int("start", 2);
    seq.attrs["end"] = ir::Attribute::of_int("end", 3);
    ir::Node dims = make("Concat", {p + "_batch", p + "_seq"}, p + "_dims", opset);
    dims.attrs["axis"] = ir::Attribute::of_int("axis", 0);
    nodes.push_back(std::move(batch));
    nodes.push_back(std::move(seq));
    nodes.push_back(std::move(dims));
    nodes.push_back(make("Squeeze", {p + "_seq", axis0}, p + "_seq_scalar", opset));
    nodes.push_back(make("Range", {p + "_zero", p + "_seq_scalar", p + "_one"}, p + "_row", opset));
    nodes.push_back(make("Expand", {p + "_row", p + "_dims"}, p, opset));
    return nodes;
  }
};

}  // namespace
KPT_REGISTER_PASS(62, FuseRotary);
}  // namespace kpt::passes
