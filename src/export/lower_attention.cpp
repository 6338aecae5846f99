// Attention (opset 23) and RotaryEmbedding (opset 23) for models of older opsets.
#include <cmath>
#include <limits>

#include "core/cast.hpp"
#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string squeeze(Emitter& e, const std::string& x, std::vector<int64_t> axes) {
  if (e.opset() >= 13) return e.op("Squeeze", {x, e.ints(axes, "axes")});
  return e.op("Squeeze", {x}, {{"axes", ir::Attribute::of_ints("axes", axes)}});
}

// [batch, seq, heads * size] -> [batch, heads, seq, size].
std::string split_heads(Emitter& e, const std::string& x, int64_t heads) {
  if (heads == 1) return e.unsqueeze(x, {1});
  return e.transpose(e.op("Reshape", {x, e.ints({0, 0, heads, -1}, "heads_shape")}), {0, 2, 1, 3});
}

// [batch, kv_heads, seq, size] -> [batch, kv_heads * groups, seq, size], head h reading kv head
// h / groups (what Attention does for grouped-query attention).
std::string repeat_kv(Emitter& e, const std::string& x, int64_t groups, int64_t heads) {
  const std::string expanded = e.op(
      "Expand",
      {e.unsqueeze(x, {2}),
       e.concat({e.shape_slice(x, 0, 2), e.ints({groups}, "groups"), e.shape_slice(x, 2, 4)}, 0)});
  const std::string shape =
      e.concat({e.shape_slice(x, 0, 1), e.ints({heads}, "heads"), e.shape_slice(x, 2, 4)}, 0);
  return e.op("Reshape", {expanded, shape});
}

// A 1-element tensor of type t holding v (ConstantOfShape's value).
Tensor filled(DType t, double v) {
  Tensor s(DType::F64, {1});
  s.data<double>()[0] = v;
  return cast_tensor(s, t);
}

// Q and KV head counts: attributes for 3-D inputs, dim 1 for 4-D ones.
std::pair<int64_t, int64_t> head_counts(const ir::Node& n, const Emitter& e, size_t rank) {
  if (rank == 3) {
    const int64_t q = n.attr_int("q_num_heads", 0), kv = n.attr_int("kv_num_heads", 0);
    check(q > 0 && kv > 0 && q % kv == 0,
          n.label() +
              ": 3-D inputs need q_num_heads and kv_num_heads (> 0, q a multiple of kv), "
              "got " +
              std::to_string(q) + " and " + std::to_string(kv));
    return {q, kv};
  }
  const auto q = e.dim(n.inputs[0], 4, 1), k = e.dim(n.inputs[1], 4, 1);
  if (q && k && *q == *k && (q->known() || !q->symbol.empty())) return {0, 0};  // equal
  check(q && k && q->known() && k->known() && k->value > 0 && q->value % k->value == 0,
        n.label() +
            ": the head counts of Q and K must be known (Q's a multiple of K's) to "
            "write grouped-query attention as standard ops");
  return {q->value, k->value};
}

}  // namespace

std::string lower_attention(const ir::Node& n, Emitter& e) {
  if (e.opset() >= 23) return "";
  if (e.mode() == ExportMode::ContribOps) {
    if (std::string mha = lower_attention_to_mha(n, e); !mha.empty()) return mha;
  }
  check(n.inputs.size() >= 3, n.label() + ": expected inputs Q, K, V");
  if (has_input(n, 4) || has_input(n, 5) || has_input(n, 6))
    unsupported(n.label() +
                ": exporting Attention with past_key/past_value or nonpad_kv_seqlen "
                "below opset 23");
  for (size_t o = 1; o < n.outputs.size(); ++o) {
    if (!n.outputs[o].empty())
      unsupported(n.label() +
                  ": exporting Attention's present_key/present_value/qk outputs "
                  "below opset 23");
  }
  const std::string &q = n.inputs[0], &k = n.inputs[1], &v = n.inputs[2];
  const auto rank = e.rank_of(q);
  check(rank == 3u || rank == 4u,
        n.label() + ": Q's rank must be known (3 or 4) to write Attention as standard ops");
  const auto [q_heads, kv_heads] = head_counts(n, e, *rank);
  const DType t = e.dtype_of(q);

  float scale = n.attr_float("scale", 0.0f);
  if (!n.has_attr("scale")) {
    std::optional<ir::Dim> d = e.dim(q, *rank, *rank - 1);
    check(d && d->known(), n.label() + ": without a scale attribute the head size must be known");
    const int64_t size = *rank == 4 ? d->value : d->value / q_heads;
    scale = 1.0f / std::sqrt(static_cast<float>(size));
  }

  std::string q4 = q, k4 = k, v4 = v;
  if (*rank == 3) {
    q4 = split_heads(e, q, q_heads);
    k4 = split_heads(e, k, kv_heads);
    v4 = split_heads(e, v, kv_heads);
  }
  if (q_heads != kv_heads) {
    k4 = repeat_kv(e, k4, q_heads / kv_heads, q_heads);
    v4 = repeat_kv(e, v4, q_heads / kv_heads, q_heads);
  }
  const std::string scaled_q = e.op("Mul", {q4, e.scalar(t, scale, "scale")});
  std::string scores = e.op("MatMul", {scaled_q, e.transpose(k4, {0, 1, 3, 2})});
  if (const float cap = n.attr_float("softcap", 0.0f); cap != 0.0f) {
    const std::string c = e.scalar(t, cap, "softcap");
    scores = e.op("Mul", {e.op("Tanh", {e.op("Div", {scores, c})}), c});
  }
  bool masked = false;
  if (has_input(n, 3)) {
    const std::string& mask = n.inputs[3];
    masked = true;
    if (e.dtype_of(mask) == DType::Bool) {
      scores = e.op("Where", {mask, scores, e.scalar(t, -kInf, "masked")});
    } else {
      scores = e.op("Add", {scores, mask});
    }
  }
  if (n.attr_int("is_causal", 0) != 0) {
    check(e.opset() >= 14, n.label() +
                               ": a causal Attention needs Trilu (opset 14) to be written "
                               "as standard ops; the model has opset " +
                               std::to_string(e.opset()));
    masked = true;
    // -inf above the diagonal of [q seq, kv seq], 0 elsewhere.
    const std::string dims = e.concat({e.shape_slice(q4, 2, 3), e.shape_slice(k4, 2, 3)}, 0);
    const std::string ninf =
        e.op("ConstantOfShape", {dims}, {{"value", attr_tensor("value", filled(t, -kInf))}});
    const std::string one = e.constant(Tensor::scalar<int64_t>(DType::I64, 1), "diagonal");
    scores =
        e.op("Add",
             {scores, e.op("Trilu", {ninf, one}, {{"upper", ir::Attribute::of_int("upper", 1)}})});
  }
  std::string probs = e.op("Softmax", {scores}, {{"axis", ir::Attribute::of_int("axis", -1)}});
  if (masked) {
    // A query row with every key masked is 0 in Attention, NaN after Softmax.
    probs = e.op("Where", {e.op("IsNaN", {probs}), e.scalar(t, 0, "zero"), probs});
  }
  std::string y = e.op("MatMul", {probs, v4});
  if (*rank == 3) {
    y = q_heads == 1
            ? squeeze(e, y, {1})
            : e.op("Reshape", {e.transpose(y, {0, 2, 1, 3}), e.ints({0, 0, -1}, "merged")});
  }
  e.finish(y, n.outputs.at(0));
  return q_heads != kv_heads ? "MatMul/Softmax/MatMul (K, V repeated per group)"
                             : "MatMul/Softmax/MatMul";
}

std::string lower_rotary(const ir::Node& n, Emitter& e) {
  if (e.opset() >= 23) return "";
  check(n.inputs.size() >= 3, n.label() + ": expected inputs X, cos_cache, sin_cache");
  if (e.mode() == ExportMode::ContribOps) {
    if (std::string contrib = lower_rotary_to_contrib(n, e); !contrib.empty()) return contrib;
  }
  if (n.attr_int("interleaved", 0) != 0)
    unsupported(n.label() +
                ": exporting interleaved RotaryEmbedding below opset 23 as standard ops (in "
                "contrib mode it becomes com.microsoft.RotaryEmbedding when position_ids are "
                "given)");
  const std::string& x = n.inputs[0];
  const auto rank = e.rank_of(x);
  check(rank == 3u || rank == 4u, n.label() + ": X's rank must be known (3 or 4)");
  const auto last = e.dim(x, *rank, *rank - 1);
  check(last && last->known(), n.label() + ": X's last dim must be known");
  int64_t head_size = last->value;
  const int64_t heads = n.attr_int("num_heads", 0);
  if (*rank == 3) {
    check(heads > 0 && head_size % heads == 0,
          n.label() + ": 3-D X needs num_heads dividing its hidden size");
    head_size /= heads;
  }
  const int64_t rot = n.attr_int("rotary_embedding_dim", 0) == 0
                          ? head_size
                          : n.attr_int("rotary_embedding_dim", 0);
  const int64_t half = rot / 2;
  std::string cos = n.inputs[1], sin = n.inputs[2];
  if (has_input(n, 3)) {
    cos = e.op("Gather", {cos, n.inputs[3]}, {{"axis", ir::Attribute::of_int("axis", 0)}});
    sin = e.op("Gather", {sin, n.inputs[3]}, {{"axis", ir::Attribute::of_int("axis", 0)}});
  }
  const auto cache_w = e.dim(n.inputs[1], has_input(n, 3) ? 2 : 3, has_input(n, 3) ? 1 : 2);
  if (!cache_w || cache_w->value != half) {
    cos = e.slice(cos, 0, half, -1);
    sin = e.slice(sin, 0, half, -1);
  }
  std::string x4 = x;
  const int64_t head_axis = *rank == 4 ? 1 : 2;  // where caches broadcast over heads
  if (*rank == 3) x4 = e.op("Reshape", {x, e.ints({0, 0, heads, head_size}, "heads_shape")});
  cos = e.unsqueeze(cos, {head_axis});
  sin = e.unsqueeze(sin, {head_axis});
  const std::string x1 = e.slice(x4, 0, half, -1), x2 = e.slice(x4, half, rot, -1);
  std::vector<std::string> parts = {e.op("Sub", {e.op("Mul", {x1, cos}), e.op("Mul", {x2, sin})}),
                                    e.op("Add", {e.op("Mul", {x1, sin}), e.op("Mul", {x2, cos})})};
  if (rot < head_size) parts.push_back(e.slice(x4, rot, head_size, -1));
  std::string y = e.concat(parts, -1);
  if (*rank == 3) y = e.op("Reshape", {y, e.ints({0, 0, -1}, "merged")});
  e.finish(y, n.outputs.at(0));
  return "Slice/Mul/Sub/Add/Concat";
}

}  // namespace kpt::onnx_export
