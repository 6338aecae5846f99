// ONNX Runtime's com.microsoft MultiHeadAttention and RotaryEmbedding, which `kpt export`
// writes (src/export/lower_attention_contrib.cpp) and ONNX Runtime's own optimizer leaves in
// models. Each is run as the ONNX Attention / RotaryEmbedding (23) node it corresponds to, so
// the arithmetic is those reference kernels'; the subsets taken are what ONNX Runtime's CPU
// kernels take without bias, packing or caches.
#include "analysis/infer_util.hpp"
#include "analysis/symbolic_dim.hpp"
#include "core/cast.hpp"
#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"
#include "ops/run_node.hpp"

namespace kpt::ops::fused {
namespace {

Tensor run_single(const ir::Node& n, const std::vector<Tensor>& inputs) {
  std::vector<Value> values;
  values.reserve(inputs.size());
  for (const auto& t : inputs) values.push_back(Value::of(t));
  std::vector<const Value*> ptrs;
  for (size_t i = 0; i < values.size(); ++i) {
    ptrs.push_back(n.inputs[i].empty() ? nullptr : &values[i]);
  }
  return run_node(n, ptrs, nullptr).at(0).tensor;
}

ir::Node standard_node(const std::string& op, std::vector<std::string> inputs,
                       const std::string& label) {
  ir::Node n;
  n.op_type = op;
  n.opset = 23;
  n.name = label;
  n.inputs = std::move(inputs);
  n.outputs = {"y"};
  return n;
}

// (B, N, L, H) -> (B, L, N * H).
Tensor merge_heads(const Tensor& x, const std::string& label) {
  ir::Node t = standard_node("Transpose", {"x"}, label);
  t.opset = 13;
  t.attrs["perm"] = ir::Attribute::of_ints("perm", {0, 2, 1, 3});
  return run_single(t, {x}).reshaped({x.dim(0), x.dim(2), x.dim(1) * x.dim(3)});
}

// key_padding_mask (B, L) or (B, S, L), 0 where masked, as an additive (B, 1, S|1, L) bias of
// mask_filter_value, which ONNX Runtime adds (a finite value: a row with every key padded
// averages over all keys).
Tensor padding_bias(KernelContext& ctx, const Tensor& m, int64_t batch, int64_t seq, int64_t kv) {
  const bool two_d = m.rank() == 2 && m.dim(0) == batch && m.dim(1) == kv;
  const bool three_d = m.rank() == 3 && m.dims() == Dims{batch, seq, kv};
  if (!two_d && !three_d)
    ctx.unsupported("key_padding_mask " + m.describe() + " (expected (" + std::to_string(batch) +
                    ", " + std::to_string(kv) + ") or (" + std::to_string(batch) + ", " +
                    std::to_string(seq) + ", " + std::to_string(kv) +
                    "); 1-D sequence lengths are not taken)");
  const double fill = ctx.attr_float("mask_filter_value", -10000.0f);
  const std::vector<int64_t> mv = m.to_i64_vector();
  std::vector<double> b(mv.size());
  for (size_t i = 0; i < mv.size(); ++i) b[i] = mv[i] == 0 ? fill : 0.0;
  return nn::from_f64(b, {batch, 1, two_d ? 1 : seq, kv}, DType::F32);
}

// Query (B, S, D), key/value (B, L, D)/(B, L, Dv) or (B, N, L, H) both, an optional
// key_padding_mask and (B|1, N|1, S, L) attention_bias; output (B, S, N * Hv).
// A query row whose every key has a -inf bias is 0 here (Attention) and NaN in ONNX Runtime.
void multi_head_attention(KernelContext& ctx) {
  const int64_t heads = ctx.attr_int("num_heads", 0);
  ctx.check(heads > 0, "num_heads must be positive, got " + std::to_string(heads));
  ctx.check(ctx.has_input(1) && ctx.has_input(2),
            "packed QKV/KV (no key or value input) is not taken; expected query, key and value");
  for (auto [i, what] : {std::pair<size_t, const char*>{3, "bias"},
                         {6, "past_key"},
                         {7, "past_value"},
                         {8, "past_sequence_length"},
                         {9, "cache_indirection"}}) {
    if (ctx.has_input(i)) ctx.unsupported(std::string("input '") + what + "'");
  }
  for (size_t o = 1; o < ctx.num_outputs(); ++o) {
    if (ctx.wants_output(o)) ctx.unsupported("outputs present_key/present_value/qk");
  }
  const Tensor& q = ctx.input(0);
  Tensor k = ctx.input(1), v = ctx.input(2);
  ctx.check(q.rank() == 3, [&] { return "query must be (B, S, D), got " + q.describe(); });
  ctx.check(k.rank() == v.rank() && (k.rank() == 3 || k.rank() == 4), [&] {
    return "key and value must both be 3-D (B, L, D) or 4-D (B, N, L, H), got " + k.describe() +
           " and " + v.describe();
  });
  if (k.rank() == 4) {
    ctx.check(k.dim(1) == heads && v.dim(1) == heads && k.dim(2) == v.dim(2), [&] {
      return "4-D key " + k.describe() + " and value " + v.describe() + " must be (B, " +
             std::to_string(heads) + ", L, H)";
    });
    k = merge_heads(k, ctx.node().label());
    v = merge_heads(v, ctx.node().label());
  }
  const int64_t batch = q.dim(0), seq = q.dim(1), kv = k.dim(1);
  const bool causal = ctx.attr_int("unidirectional", 0) != 0;
  if (causal && seq < kv)
    ctx.unsupported("unidirectional with a key sequence (" + std::to_string(kv) +
                    ") longer than the query's (" + std::to_string(seq) + ")");

  std::optional<Tensor> mask;
  if (ctx.has_input(4)) mask = padding_bias(ctx, ctx.input(4), batch, seq, kv);
  if (ctx.has_input(5)) {
    const Tensor& b = ctx.input(5);
    ctx.check(b.rank() == 4 && (b.dim(0) == 1 || b.dim(0) == batch) &&
                  (b.dim(1) == 1 || b.dim(1) == heads) && b.dim(2) == seq && b.dim(3) == kv,
              [&] {
                return "attention_bias must be (B|1, N|1, S, L) = (" + std::to_string(batch) +
                       "|1, " + std::to_string(heads) + "|1, " + std::to_string(seq) + ", " +
                       std::to_string(kv) + "), got " + b.describe();
              });
    if (mask) {
      const Tensor cast = b.dtype() == DType::F32 ? b : cast_tensor(b, DType::F32);
      mask = run_single(standard_node("Add", {"a", "b"}, ctx.node().label()), {*mask, cast});
    } else {
      mask = b;
    }
  }
  ir::Node att =
      standard_node("Attention", {"q", "k", "v", mask ? "mask" : ""}, ctx.node().label());
  att.attrs["q_num_heads"] = ir::Attribute::of_int("q_num_heads", heads);
  att.attrs["kv_num_heads"] = ir::Attribute::of_int("kv_num_heads", heads);
  if (const float scale = ctx.attr_float("scale", 0.0f); scale != 0.0f)
    att.attrs["scale"] = ir::Attribute::of_float("scale", scale);
  if (causal) att.attrs["is_causal"] = ir::Attribute::of_int("is_causal", 1);
  if (mask && mask->dtype() != q.dtype()) mask = cast_tensor(*mask, q.dtype());
  ctx.set_output(0, run_single(att, {q, k, v, mask ? *mask : Tensor()}));
}

// Input (B, S, D) or (B, N, S, H); position_ids (B, S) or a 1-element start offset; caches
// (max positions, rotary_dim / 2). Without rotary_embedding_dim ONNX Runtime takes the head
// size from the cache width.
void rotary_embedding(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& pos = ctx.input(1);
  const Tensor& cos = ctx.input(2);
  const Tensor& sin = ctx.input(3);
  if (ctx.attr_int("is_packed_batching", 0) != 0) ctx.unsupported("is_packed_batching = 1");
  ctx.check(x.rank() == 3 || x.rank() == 4,
            [&] { return "input must be (B, S, D) or (B, N, S, H), got " + x.describe(); });
  ctx.check(cos.rank() == 2 && sin.dims() == cos.dims(), [&] {
    return "cos_cache and sin_cache must be 2-D of one shape, got " + cos.describe() + " and " +
           sin.describe();
  });
  const int64_t batch = x.dim(0), seq = x.rank() == 4 ? x.dim(2) : x.dim(1);
  const int64_t hidden = x.rank() == 4 ? x.dim(1) * x.dim(3) : x.dim(2);
  int64_t heads = ctx.attr_int("num_heads", 0), rot = ctx.attr_int("rotary_embedding_dim", 0);
  ctx.check(rot == 0 || heads > 0, "num_heads must be given with rotary_embedding_dim");
  const int64_t head_size = rot == 0 ? 2 * cos.dim(1) : hidden / heads;
  if (heads == 0) heads = hidden / head_size;
  ctx.check(head_size > 0 && heads * head_size == hidden &&
                (x.rank() == 3 || (x.dim(1) == heads && x.dim(3) == head_size)),
            [&] {
              return "input " + x.describe() + " does not split into " + std::to_string(heads) +
                     " heads of " + std::to_string(head_size) +
                     " (the head size is hidden / num_heads, or twice the cache width)";
            });
  if (rot == 0) rot = head_size;
  ctx.check(cos.dim(1) * 2 == rot, [&] {
    return "the caches " + cos.describe() +
           " must be rotary_embedding_dim / 2 = " + std::to_string(rot / 2) + " wide";
  });
  Tensor ids = pos;
  if (pos.numel() == 1 && pos.rank() <= 1) {
    ids = Tensor(DType::I64, {batch, seq});
    const int64_t start = pos.to_i64_vector()[0];
    for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int64_t>()[i] = start + i % seq;
  }
  ir::Node r = standard_node("RotaryEmbedding", {"x", "cos", "sin", "pos"}, ctx.node().label());
  r.attrs["interleaved"] = ir::Attribute::of_int("interleaved", ctx.attr_int("interleaved", 0));
  r.attrs["rotary_embedding_dim"] = ir::Attribute::of_int("rotary_embedding_dim", rot);
  if (x.rank() == 3) r.attrs["num_heads"] = ir::Attribute::of_int("num_heads", heads);
  ctx.set_output(0, run_single(r, {x, cos, sin, ids}));
}

// (B, S, N * Hv): Hv from a 3-D value's last dim or a 4-D value's heads * size.
void infer_multi_head_attention(InferContext& ctx) {
  const auto q = analysis::input_shape(ctx, 0), v = analysis::input_shape(ctx, 2);
  std::optional<ir::Shape> out;
  if (q && q->size() == 3 && v && (v->size() == 3 || v->size() == 4)) {
    out =
        ir::Shape{(*q)[0], (*q)[1], v->size() == 3 ? (*v)[2] : analysis::dim_mul((*v)[1], (*v)[3])};
  }
  analysis::set_output(ctx, 0, analysis::input_dtype(ctx, 0), out);
}

void infer_same_as_input(InferContext& ctx) {
  analysis::same_as_input(ctx, 0, 0);
}

}  // namespace

KPT_REGISTER_OP("com.microsoft", "MultiHeadAttention", 1, multi_head_attention,
                infer_multi_head_attention);
KPT_REGISTER_OP("com.microsoft", "RotaryEmbedding", 1, rotary_embedding, infer_same_as_input);

}  // namespace kpt::ops::fused
