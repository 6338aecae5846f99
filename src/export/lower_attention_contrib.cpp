// Attention (23) and RotaryEmbedding (23) as ONNX Runtime's com.microsoft MultiHeadAttention
// and RotaryEmbedding, for models of older opsets in contrib mode. Each returns "" without
// writing anything when the contrib op cannot compute exactly what the node does; the caller
// then writes the standard decomposition. What ONNX Runtime 1.30's CPU kernels accept was
// checked by running them (docs/EXPORT.md lists the cases):
// - MultiHeadAttention takes a 3-D query; 4-D key/value only when both have one shape (the
//   value head size equal to the key's); attention_bias only as 4-D (B|1, N|1, S, L);
//   `unidirectional` masks like Attention's is_causal only when S == L; float only.
// - A query row whose every key is masked is NaN there and 0 in Attention.
// - RotaryEmbedding takes 2-D caches exactly rotary_embedding_dim/2 wide, position ids
//   (batch, seq), and refuses sequences longer than the cache.
#include <cmath>
#include <limits>

#include "analysis/symbolic_dim.hpp"
#include "core/cast.hpp"
#include "export/lowerings.hpp"

namespace kpt::onnx_export {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool equal_dims(const std::optional<ir::Dim>& a, const std::optional<ir::Dim>& b) {
  return a && b && analysis::same_dim(*a, *b);
}

// [batch, heads, seq, size] -> [batch, seq, heads * size].
std::string merge_heads(Emitter& e, const std::string& x) {
  return e.op("Reshape", {e.transpose(x, {0, 2, 1, 3}), e.ints({0, 0, -1}, "merged")});
}

// What of an Attention node MultiHeadAttention can take, found before anything is written.
struct MhaPlan {
  size_t rank = 0;
  int64_t heads = 0;
  bool kv_as_4d = false;        // key/value passed as they are (B, N, L, H)
  bool unidirectional = false;  // causal as MHA's attribute; else as an additive bias
  bool causal_bias = false;
};

std::optional<MhaPlan> plan_mha(const ir::Node& n, const Emitter& e) {
  if (n.inputs.size() < 3 || has_input(n, 4) || has_input(n, 5) || has_input(n, 6))
    return std::nullopt;  // KV cache or nonpad lengths: the standard lowering names them
  for (size_t o = 1; o < n.outputs.size(); ++o) {
    if (!n.outputs[o].empty()) return std::nullopt;
  }
  if (n.attr_float("softcap", 0.0f) != 0.0f) return std::nullopt;
  // MHA reads a scale of 0 as "the default".
  if (n.has_attr("scale") && n.attr_float("scale", 0.0f) == 0.0f) return std::nullopt;
  const std::string &q = n.inputs[0], &k = n.inputs[1], &v = n.inputs[2];
  if (e.dtype_of(q) != DType::F32) return std::nullopt;
  const auto rank = e.rank_of(q);
  if (!rank || (*rank != 3 && *rank != 4) || e.rank_of(k) != rank || e.rank_of(v) != rank)
    return std::nullopt;
  MhaPlan p;
  p.rank = *rank;
  if (p.rank == 3) {
    p.heads = n.attr_int("q_num_heads", 0);
    if (p.heads <= 0 || n.attr_int("kv_num_heads", 0) != p.heads) return std::nullopt;
  } else {
    const auto hq = e.dim(q, 4, 1);
    if (!hq || !hq->known() || !equal_dims(hq, e.dim(k, 4, 1)) || !equal_dims(hq, e.dim(v, 4, 1)))
      return std::nullopt;  // grouped-query K/V: MHA wants one head count
    p.heads = hq->value;
    p.kv_as_4d = equal_dims(e.dim(k, 4, 3), e.dim(v, 4, 3));
  }
  if (has_input(n, 3)) {
    const DType m = e.dtype_of(n.inputs[3]);
    if (m != DType::F32 && m != DType::Bool) return std::nullopt;
  }
  if (n.attr_int("is_causal", 0) != 0) {
    const size_t seq_axis = p.rank == 4 ? 2 : 1;
    p.unidirectional = equal_dims(e.dim(q, p.rank, seq_axis), e.dim(k, p.rank, seq_axis));
    p.causal_bias = !p.unidirectional;
    if (p.causal_bias && e.opset() < 14) return std::nullopt;  // Trilu
  }
  return p;
}

// The mask (bool as 0/-inf) plus the causal bias, as the (B|1, N|1, S, L) attention_bias.
std::string attention_bias(const ir::Node& n, Emitter& e, const MhaPlan& p, const std::string& q3) {
  const std::string& k = n.inputs[1];
  const size_t seq_axis = p.rank == 4 ? 2 : 1;
  std::string bias;
  std::optional<ir::Dim> rows, cols;  // the bias's last two dims when known to be S and L
  if (has_input(n, 3)) {
    const std::string& mask = n.inputs[3];
    bias = e.dtype_of(mask) == DType::Bool ? e.op("Where", {mask, e.scalar(DType::F32, 0, "zero"),
                                                            e.scalar(DType::F32, -kInf, "masked")})
                                           : mask;
    if (e.rank_of(mask) == 4u) {
      rows = e.dim(mask, 4, 2);
      cols = e.dim(mask, 4, 3);
    }
  }
  const std::string seq_q = e.shape_slice(q3, 1, 2);
  const std::string seq_kv = e.shape_slice(k, seq_axis, seq_axis + 1);
  if (p.causal_bias) {
    Tensor ninf(DType::F32, {1});
    ninf.data<float>()[0] = -std::numeric_limits<float>::infinity();
    const std::string full = e.op("ConstantOfShape", {e.concat({seq_q, seq_kv}, 0)},
                                  {{"value", attr_tensor("value", std::move(ninf))}});
    const std::string one = e.constant(Tensor::scalar<int64_t>(DType::I64, 1), "diagonal");
    const std::string causal =
        e.op("Trilu", {full, one}, {{"upper", ir::Attribute::of_int("upper", 1)}});
    bias = bias.empty() ? causal : e.op("Add", {bias, causal});
    rows.reset();
  }
  const auto s = e.dim(n.inputs[0], p.rank, seq_axis), l = e.dim(k, p.rank, seq_axis);
  if (equal_dims(rows, s) && equal_dims(cols, l)) return bias;
  return e.op("Expand", {bias, e.concat({e.ints({1, 1}, "bias_lead"), seq_q, seq_kv}, 0)});
}

}  // namespace

std::string lower_attention_to_mha(const ir::Node& n, Emitter& e) {
  const std::optional<MhaPlan> plan = plan_mha(n, e);
  if (!plan) return "";
  const MhaPlan& p = *plan;
  std::string q = n.inputs[0], k = n.inputs[1], v = n.inputs[2];
  if (p.rank == 4) {
    q = merge_heads(e, q);
    if (!p.kv_as_4d) {
      k = merge_heads(e, k);
      v = merge_heads(e, v);
    }
  }
  std::map<std::string, ir::Attribute> attrs = {
      {"num_heads", ir::Attribute::of_int("num_heads", p.heads)}};
  if (n.has_attr("scale"))
    attrs["scale"] = ir::Attribute::of_float("scale", n.attr_float("scale", 0.0f));
  if (p.unidirectional) attrs["unidirectional"] = ir::Attribute::of_int("unidirectional", 1);
  std::vector<std::string> inputs = {q, k, v};
  if (has_input(n, 3) || p.causal_bias)
    inputs.insert(inputs.end(), {"", "", attention_bias(n, e, p, q)});
  std::string y = e.op("MultiHeadAttention", inputs, attrs, "com.microsoft");
  if (has_input(n, 3)) {
    // A row with every key masked: NaN from MultiHeadAttention, 0 in Attention.
    y = e.op("Where", {e.op("IsNaN", {y}), e.scalar(DType::F32, 0, "zero"), y});
  }
  if (p.rank == 4) {
    y = e.transpose(e.op("Reshape", {y, e.ints({0, 0, p.heads, -1}, "heads_shape")}), {0, 2, 1, 3});
  }
  e.finish(y, n.outputs.at(0));
  std::string what = "MultiHeadAttention";
  if (p.rank == 4) what += p.kv_as_4d ? " (Q to BSD)" : " (Q, K, V to BSD)";
  if (has_input(n, 3) || p.causal_bias) what += " + attention_bias";
  return what;
}

std::string lower_rotary_to_contrib(const ir::Node& n, Emitter& e) {
  if (n.inputs.size() < 4 || !has_input(n, 3)) return "";  // 3-D caches: no contrib form
  const std::string &x = n.inputs[0], &cos = n.inputs[1], &sin = n.inputs[2], &pos = n.inputs[3];
  if (e.dtype_of(x) != DType::F32 || e.dtype_of(pos) != DType::I64) return "";
  const auto rank = e.rank_of(x);
  if (!rank || (*rank != 3 && *rank != 4) || e.rank_of(pos) != 2u) return "";
  const auto last = e.dim(x, *rank, *rank - 1);
  if (!last || !last->known()) return "";
  int64_t heads = n.attr_int("num_heads", 0), head_size = last->value;
  if (*rank == 4) {
    const auto h = e.dim(x, 4, 1);
    heads = h && h->known() ? h->value : 0;
  } else if (heads > 0 && head_size % heads == 0) {
    head_size /= heads;
  } else {
    return "";
  }
  if (heads <= 0) return "";
  const int64_t rot = n.attr_int("rotary_embedding_dim", 0) == 0
                          ? head_size
                          : n.attr_int("rotary_embedding_dim", 0);
  const int64_t half = rot / 2;
  // ONNX Runtime refuses a sequence longer than the cache, whatever the position ids.
  const auto rows = e.dim(cos, 2, 0), seq = e.dim(x, *rank, *rank == 4 ? 2 : 1);
  const bool fits = equal_dims(rows, seq) ||
                    (rows && rows->known() && (!seq || !seq->known() || seq->value <= rows->value));
  if (!fits) return "";
  std::string c = cos, s = sin;
  const auto width = e.dim(cos, 2, 1);
  if (!width || !width->known() || width->value != half) {
    c = e.slice(c, 0, half, -1);
    s = e.slice(s, 0, half, -1);
  }
  e.op_to("RotaryEmbedding", {x, pos, c, s}, {n.outputs.at(0)},
          {{"interleaved", ir::Attribute::of_int("interleaved", n.attr_int("interleaved", 0))},
           {"num_heads", ir::Attribute::of_int("num_heads", heads)},
           {"rotary_embedding_dim", ir::Attribute::of_int("rotary_embedding_dim", rot)}},
          "com.microsoft");
  return "RotaryEmbedding";
}

}  // namespace kpt::onnx_export
