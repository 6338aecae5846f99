// LinearAttention (opset 27): recurrent attention with a per-head [Dk, Dv] state, updated per
// time step by one of four rules ("linear", "gated", "delta", "gated_delta") and read by the
// query. Query heads share key/value heads in groups (GQA/MQA). State math is in float.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

void linear_attention(KernelContext& ctx) {
  const Tensor& q_t = ctx.input(0);
  const Tensor& k_t = ctx.input(1);
  const Tensor& v_t = ctx.input(2);
  const DType t = q_t.dtype();
  ctx.check(is_float(t), [&] { return "query must be a float tensor, got " + q_t.describe(); });
  ctx.check(q_t.rank() == 3 && k_t.rank() == 3 && v_t.rank() == 3, [&] {
    return "query, key and value must be 3-D [batch, seq, heads*size], got " + q_t.describe() +
           ", " + k_t.describe() + ", " + v_t.describe();
  });
  const int64_t B = q_t.dim(0), T = q_t.dim(1);
  ctx.check(k_t.dim(0) == B && v_t.dim(0) == B && k_t.dim(1) == T && v_t.dim(1) == T,
            "query, key and value must agree on batch and sequence");
  const int64_t hq = ctx.attr_int("q_num_heads", 0), hkv = ctx.attr_int("kv_num_heads", 0);
  ctx.check(hq > 0 && hkv > 0 && hq % hkv == 0,
            "q_num_heads and kv_num_heads must be positive with q a multiple of kv, got " +
                std::to_string(hq) + " and " + std::to_string(hkv));
  ctx.check(q_t.dim(2) % hq == 0 && v_t.dim(2) % hkv == 0,
            "hidden sizes must be multiples of the head counts");
  const int64_t dk = q_t.dim(2) / hq, dv = v_t.dim(2) / hkv, group = hq / hkv;
  ctx.check(k_t.dim(2) == hkv * dk, "key hidden size " + std::to_string(k_t.dim(2)) +
                                        " must be kv_num_heads * " + std::to_string(dk));
  check_scratch({B, hkv, dk, dv}, "the recurrent state");
  check_scratch({B, T, hq, dv}, "the output");
  const std::string rule = ctx.attr_string("update_rule", "gated_delta");
  const bool gated = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  if (!gated && !delta && rule != "linear")
    ctx.unsupported("update_rule \"" + rule + "\" (expected linear, gated, delta, gated_delta)");
  const double scale = ctx.node().has_attr("scale") && ctx.attr_float("scale", 0.0f) != 0
                           ? ctx.attr_float("scale", 0.0f)
                           : 1.0 / std::sqrt(static_cast<double>(static_cast<float>(dk)));

  const std::vector<double> q = to_f64(q_t), k = to_f64(k_t), v = to_f64(v_t);
  std::vector<double> state(static_cast<size_t>(B * hkv * dk * dv), 0.0);
  if (ctx.has_input(3)) {
    const Tensor& p = ctx.input(3);
    ctx.check(p.dims() == Dims{B, hkv, dk, dv}, [&] {
      return "past_state must be [" + std::to_string(B) + "," + std::to_string(hkv) + "," +
             std::to_string(dk) + "," + std::to_string(dv) + "], got " + p.describe();
    });
    state = to_f64(p);
  }
  // decay: per key dim ([B,T,Hkv*Dk]), per head ([B,T,Hkv]) or shared ([B,T,1]).
  std::vector<double> decay;
  int64_t decay_w = 0;
  if (gated) {
    ctx.check(ctx.has_input(4), "update_rule \"" + rule + "\" needs the decay input");
    const Tensor& d = ctx.input(4);
    decay_w = d.rank() == 3 ? d.dim(2) : -1;
    ctx.check(d.rank() == 3 && d.dim(0) == B && d.dim(1) == T &&
                  (decay_w == hkv * dk || decay_w == hkv || decay_w == 1),
              [&] {
                return "decay must be [batch, seq, kv_heads*Dk | kv_heads | 1], got " +
                       d.describe();
              });
    decay = to_f64(d);
  }
  std::vector<double> beta;
  int64_t beta_w = 0;
  if (delta) {
    ctx.check(ctx.has_input(5), "update_rule \"" + rule + "\" needs the beta input");
    const Tensor& b = ctx.input(5);
    beta_w = b.rank() == 3 ? b.dim(2) : -1;
    ctx.check(b.rank() == 3 && b.dim(0) == B && b.dim(1) == T && (beta_w == hkv || beta_w == 1),
              [&] { return "beta must be [batch, seq, kv_heads | 1], got " + b.describe(); });
    beta = to_f64(b);
  }

  std::vector<double> out(static_cast<size_t>(B * T * hq * dv), 0.0);
  std::vector<double> retrieved(static_cast<size_t>(dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < T; ++s) {
      const int64_t bt = b * T + s;
      for (int64_t h = 0; h < hkv; ++h) {
        double* S = state.data() + (b * hkv + h) * dk * dv;
        const double* kk = k.data() + (bt * hkv + h) * dk;
        const double* vv = v.data() + (bt * hkv + h) * dv;
        if (gated)
          for (int64_t i = 0; i < dk; ++i) {
            const int64_t di = decay_w == hkv * dk ? h * dk + i : (decay_w == hkv ? h : 0);
            const double g = std::exp(decay[static_cast<size_t>(bt * decay_w + di)]);
            for (int64_t j = 0; j < dv; ++j) S[i * dv + j] *= g;
          }
        if (delta) {
          const double bb = beta[static_cast<size_t>(bt * beta_w + (beta_w == 1 ? 0 : h))];
          for (int64_t j = 0; j < dv; ++j) {
            double r = 0;
            for (int64_t i = 0; i < dk; ++i) r += S[i * dv + j] * kk[i];
            retrieved[static_cast<size_t>(j)] = bb * (vv[j] - r);
          }
        } else {
          for (int64_t j = 0; j < dv; ++j) retrieved[static_cast<size_t>(j)] = vv[j];
        }
        for (int64_t i = 0; i < dk; ++i)
          for (int64_t j = 0; j < dv; ++j)
            S[i * dv + j] += kk[i] * retrieved[static_cast<size_t>(j)];
      }
      for (int64_t h = 0; h < hq; ++h) {
        const double* S = state.data() + (b * hkv + h / group) * dk * dv;
        const double* qq = q.data() + (bt * hq + h) * dk;
        for (int64_t j = 0; j < dv; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < dk; ++i) acc += qq[i] * S[i * dv + j];
          out[static_cast<size_t>((bt * hq + h) * dv + j)] = scale * acc;
        }
      }
    }
  ctx.set_output(0, from_f64(out, {B, T, hq * dv}, t));
  ctx.set_output(1, from_f64(state, {B, hkv, dk, dv}, t));
}

}  // namespace

KPT_REGISTER_OP("", "LinearAttention", 1, linear_attention);

}  // namespace kpt::ops::nn
