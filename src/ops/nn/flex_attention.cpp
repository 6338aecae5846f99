// FlexAttention (ai.onnx.preview, opset 1): 4-D scaled dot-product attention whose scores and
// probabilities pass through the optional `score_mod` and `prob_mod` subgraphs, each called
// once on the whole float32 [batch, heads, q_seq, kv_seq] tensor. K/V heads are shared in
// groups when there are fewer of them than query heads.
#include <cmath>
#include <limits>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

Tensor apply_mod(KernelContext& ctx, const char* name, Tensor x) {
  const ir::Graph* body = ctx.node().attr_graph(name);
  if (body == nullptr) return x;
  const Dims dims = x.dims();
  std::vector<Value> out = ctx.run_subgraph(*body, {Value::of(std::move(x))});
  ctx.check(out.size() == 1 && out[0].is_tensor(), std::string(name) + " must return one tensor");
  Tensor r = out[0].tensor;
  ctx.check(r.dims() == dims, std::string(name) + " returned " + r.describe() +
                                  "; expected the shape " + dims_to_string(dims));
  return r.dtype() == DType::F32 ? r : cast_tensor(r, DType::F32);
}

void flex_attention(KernelContext& ctx) {
  const Tensor& q_t = ctx.input(0);
  const Tensor& k_t = ctx.input(1);
  const Tensor& v_t = ctx.input(2);
  const DType t = q_t.dtype();
  ctx.check(is_float(t) && k_t.dtype() == t && v_t.dtype() == t, [&] {
    return "Q, K and V must be float tensors of one type, got " + q_t.describe() + ", " +
           k_t.describe() + ", " + v_t.describe();
  });
  ctx.check(q_t.rank() == 4 && k_t.rank() == 4 && v_t.rank() == 4,
            "Q, K and V must be 4-D [batch, heads, seq, size]");
  const int64_t B = q_t.dim(0), H = q_t.dim(1), L = q_t.dim(2), D = q_t.dim(3);
  const int64_t hkv = k_t.dim(1), S = k_t.dim(2), Dv = v_t.dim(3);
  ctx.check(
      k_t.dim(0) == B && v_t.dim(0) == B && v_t.dim(1) == hkv && v_t.dim(2) == S && k_t.dim(3) == D,
      [&] {
        return "K " + k_t.describe() + " and V " + v_t.describe() + " do not fit Q " +
               q_t.describe();
      });
  ctx.check(hkv > 0 && H % hkv == 0, "query heads must be a multiple of key/value heads");
  const int64_t group = H / hkv;
  check_scratch({B, H, L, S}, "the attention score tensor");
  const auto R = [t](double x) { return round_to(t, x); };
  float scale_f = 1.0f / std::sqrt(static_cast<float>(D));
  if (ctx.node().has_attr("scale")) scale_f = ctx.attr_float("scale", scale_f);
  const double s = R(static_cast<float>(std::sqrt(scale_f)));
  const std::vector<double> q = to_f64(q_t), k = to_f64(k_t), v = to_f64(v_t);

  Tensor scores(DType::F32, {B, H, L, S});
  float* ps = scores.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i)
        for (int64_t j = 0; j < S; ++j) {
          double acc = 0;
          const double* qq = q.data() + ((b * H + h) * L + i) * D;
          const double* kk = k.data() + ((b * hkv + h / group) * S + j) * D;
          for (int64_t d = 0; d < D; ++d) acc += R(qq[d] * s) * R(kk[d] * s);
          ps[((b * H + h) * L + i) * S + j] = static_cast<float>(R(acc));
        }
  scores = apply_mod(ctx, "score_mod", scores);

  Tensor probs(DType::F32, {B, H, L, S});
  const float* sc = scores.data<float>();
  float* pp = probs.data<float>();
  for (int64_t r = 0; r < B * H * L; ++r) {
    double mx = -std::numeric_limits<double>::infinity();
    bool nan = false;
    for (int64_t j = 0; j < S; ++j) {
      const double x = sc[r * S + j];
      nan = nan || std::isnan(x);
      mx = std::max(mx, x);
    }
    double sum = 0;
    for (int64_t j = 0; j < S; ++j) sum += std::exp(sc[r * S + j] - mx);
    for (int64_t j = 0; j < S; ++j)
      pp[r * S + j] = nan ? std::numeric_limits<float>::quiet_NaN()
                          : static_cast<float>(std::exp(sc[r * S + j] - mx) / sum);
  }
  probs = apply_mod(ctx, "prob_mod", probs);

  const float* pr = probs.data<float>();
  std::vector<double> y(static_cast<size_t>(B * H * L * Dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i)
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < S; ++j)
            acc += static_cast<double>(pr[((b * H + h) * L + i) * S + j]) *
                   v[static_cast<size_t>(((b * hkv + h / group) * S + j) * Dv + d)];
          y[static_cast<size_t>(((b * H + h) * L + i) * Dv + d)] = acc;
        }
  ctx.set_output(0, from_f64(y, {B, H, L, Dv}, t));
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.preview", "FlexAttention", 1, flex_attention);

}  // namespace kpt::ops::nn
