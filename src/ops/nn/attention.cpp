// Attention (opsets 23, 24): scaled dot-product attention over 3-D ([batch, seq, heads*size])
// or 4-D ([batch, heads, seq, size]) Q/K/V, with grouped-query heads, past key/value caches,
// boolean or additive masks, causal masking, softcap and the optional QK output.
//
// Intermediate results are rounded to the input type where the ONNX function body computes in
// that type, so that float16 models agree with the reference to within one rounding.
#include <cmath>
#include <limits>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A [batch, heads, seq, size] view of Q, K or V read from a 3-D or 4-D input.
struct Heads {
  int64_t batch = 0, heads = 0, seq = 0, size = 0;
  std::vector<double> v;
  double at(int64_t b, int64_t h, int64_t s, int64_t d) const {
    return v[static_cast<size_t>(((b * heads + h) * seq + s) * size + d)];
  }
};

Heads read_heads(KernelContext& ctx, const Tensor& t, int64_t num_heads, const char* what) {
  Heads r;
  const std::vector<double> src = to_f64(t);
  if (t.rank() == 4) {
    r = Heads{t.dim(0), t.dim(1), t.dim(2), t.dim(3), src};
    ctx.check(num_heads == 0 || num_heads == r.heads, [&] {
      return std::string(what) + " " + t.describe() + " disagrees with its num_heads attribute " +
             std::to_string(num_heads);
    });
    return r;
  }
  ctx.check(t.rank() == 3,
            [&] { return std::string(what) + " must be 3-D or 4-D, got " + t.describe(); });
  ctx.check(num_heads > 0, [&] {
    return std::string("q_num_heads and kv_num_heads must be positive for 3-D ") + what + " " +
           t.describe();
  });
  ctx.check(t.dim(2) % num_heads == 0,
            std::string(what) + " hidden size " + std::to_string(t.dim(2)) +
                " is not a multiple of its head count " + std::to_string(num_heads));
  r.batch = t.dim(0);
  r.seq = t.dim(1);
  r.heads = num_heads;
  r.size = t.dim(2) / num_heads;
  r.v.resize(src.size());
  for (int64_t b = 0; b < r.batch; ++b)
    for (int64_t s = 0; s < r.seq; ++s)
      for (int64_t h = 0; h < r.heads; ++h)
        for (int64_t d = 0; d < r.size; ++d)
          r.v[static_cast<size_t>(((b * r.heads + h) * r.seq + s) * r.size + d)] =
              src[static_cast<size_t>(((b * r.seq + s) * r.heads + h) * r.size + d)];
  return r;
}

// Prepends a [batch, heads, past, size] cache to x along the sequence axis.
Heads with_past(KernelContext& ctx, const Heads& x, const Tensor* past, const char* what) {
  if (past == nullptr) return x;
  ctx.check(past->rank() == 4 && past->dim(0) == x.batch && past->dim(1) == x.heads &&
                past->dim(3) == x.size,
            [&] {
              return std::string(what) + " " + past->describe() + " must be [" +
                     std::to_string(x.batch) + "," + std::to_string(x.heads) + ",past," +
                     std::to_string(x.size) + "]";
            });
  const std::vector<double> p = to_f64(*past);
  const int64_t np = past->dim(2);
  Heads r{x.batch, x.heads, np + x.seq, x.size, {}};
  r.v.resize(static_cast<size_t>(r.batch * r.heads * r.seq * r.size));
  for (int64_t b = 0; b < r.batch; ++b)
    for (int64_t h = 0; h < r.heads; ++h)
      for (int64_t s = 0; s < r.seq; ++s)
        for (int64_t d = 0; d < r.size; ++d)
          r.v[static_cast<size_t>(((b * r.heads + h) * r.seq + s) * r.size + d)] =
              s < np ? p[static_cast<size_t>(((b * r.heads + h) * np + s) * r.size + d)]
                     : x.at(b, h, s - np, d);
  return r;
}

void attention(KernelContext& ctx) {
  const Tensor& q_t = ctx.input(0);
  const Tensor& k_t = ctx.input(1);
  const Tensor& v_t = ctx.input(2);
  const DType t = q_t.dtype();
  ctx.check(is_float(t) && k_t.dtype() == t && v_t.dtype() == t, [&] {
    return "Q, K and V must be float tensors of one type, got " + q_t.describe() + ", " +
           k_t.describe() + ", " + v_t.describe();
  });
  ctx.check(q_t.rank() == k_t.rank() && q_t.rank() == v_t.rank(), [&] {
    return "Q, K and V must have the same rank, got " + q_t.describe() + ", " + k_t.describe() +
           ", " + v_t.describe();
  });
  const auto R = [t](double x) { return round_to(t, x); };
  const Heads q = read_heads(ctx, q_t, ctx.attr_int("q_num_heads", 0), "Q");
  const Heads k_new = read_heads(ctx, k_t, ctx.attr_int("kv_num_heads", 0), "K");
  const Heads v_new = read_heads(ctx, v_t, ctx.attr_int("kv_num_heads", 0), "V");
  ctx.check(k_new.batch == q.batch && v_new.batch == q.batch && k_new.heads == v_new.heads &&
                k_new.seq == v_new.seq && k_new.size == q.size,
            [&] {
              return "K " + k_t.describe() + " and V " + v_t.describe() + " do not fit Q " +
                     q_t.describe();
            });
  ctx.check(k_new.heads > 0 && q.heads % k_new.heads == 0,
            "q heads (" + std::to_string(q.heads) + ") must be a multiple of kv heads (" +
                std::to_string(k_new.heads) + ")");
  const bool has_past = ctx.has_input(4) || ctx.has_input(5);
  ctx.check(ctx.has_input(4) == ctx.has_input(5), "past_key and past_value must be given together");
  const Heads k = with_past(ctx, k_new, has_past ? &ctx.input(4) : nullptr, "past_key");
  const Heads v = with_past(ctx, v_new, has_past ? &ctx.input(5) : nullptr, "past_value");
  const int64_t past_len = k.seq - k_new.seq;
  const int64_t B = q.batch, H = q.heads, S = q.seq, L = k.seq, D = q.size, Dv = v.size;
  const int64_t group = H / k.heads;
  check_scratch({B, H, S, L}, "the attention score tensor");

  float scale_f = ctx.attr_float("scale", 0.0f);
  if (!ctx.node().has_attr("scale")) scale_f = 1.0f / std::sqrt(static_cast<float>(D));
  const double s = R(std::sqrt(scale_f));
  const double softcap = ctx.attr_float("softcap", 0.0f);
  const int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3)
    ctx.unsupported("qk_matmul_output_mode " + std::to_string(mode) + " (expected 0..3)");
  DType softmax_t = t;
  if (ctx.node().has_attr("softmax_precision")) {
    const int64_t code = ctx.attr_int("softmax_precision", 0);
    ctx.check(is_valid_dtype(static_cast<int32_t>(code)) && is_float(static_cast<DType>(code)),
              "softmax_precision must be a float element type, got " + std::to_string(code));
    softmax_t = static_cast<DType>(code);
  }

  // Additive bias [B, H, S, L] from the mask, causality and KV padding.
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  std::vector<int64_t> nonpad;
  if (ctx.has_input(6)) {
    const Tensor& np = ctx.input(6);
    ctx.check(np.rank() == 1 && np.dim(0) == B, [&] {
      return "nonpad_kv_seqlen must be 1-D of the batch size, got " + np.describe();
    });
    nonpad = np.to_i64_vector();
    for (int64_t n : nonpad)
      ctx.check(n >= 0 && n <= L, "nonpad_kv_seqlen value " + std::to_string(n) +
                                      " is outside [0, " + std::to_string(L) + "]");
  }
  const bool has_mask = ctx.has_input(3);
  const bool has_bias = has_mask || causal || !nonpad.empty();
  std::vector<double> bias(static_cast<size_t>(B * H * S * L), 0.0);
  if (has_mask) {
    const Tensor& m = ctx.input(3);
    ctx.check(m.dtype() == DType::Bool || is_float(m.dtype()),
              [&] { return "attn_mask must be bool or float, got " + m.describe(); });
    ctx.check(m.rank() >= 1 && m.rank() <= 4,
              [&] { return "attn_mask must have rank 1..4, got " + m.describe(); });
    const int64_t lm = m.dim(-1);
    const bool pad = lm < L && !(lm == 1 && ctx.opset() < 24);
    ctx.check(lm == L || lm == 1 || (pad && ctx.opset() >= 24),
              "attn_mask last dim " + std::to_string(lm) + " does not match the total sequence " +
                  std::to_string(L));
    const int64_t width = pad ? lm : L;
    const Dims out{B, H, S, width};
    const Dims bd = broadcast_dims(out, m.dims());
    ctx.check(bd == out, [&] {
      return "attn_mask " + m.describe() + " does not broadcast to " + dims_to_string(out);
    });
    const auto off = broadcast_offsets(out, m.dims());
    const std::vector<double> mv = to_f64(m);
    const bool is_bool = m.dtype() == DType::Bool;
    for (int64_t r = 0; r < B * H * S; ++r)
      for (int64_t j = 0; j < L; ++j) {
        double x = kNegInf;
        if (j < width) {
          const double e = mv[static_cast<size_t>(off[static_cast<size_t>(r * width + j)])];
          x = is_bool ? (e != 0 ? 0.0 : kNegInf) : e;
        }
        bias[static_cast<size_t>(r * L + j)] = x;
      }
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t offset = nonpad.empty() ? past_len : nonpad[static_cast<size_t>(b)] - S;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i)
        for (int64_t j = 0; j < L; ++j) {
          double& x = bias[static_cast<size_t>(((b * H + h) * S + i) * L + j)];
          if (causal && i + offset < j) x += kNegInf;
          if (!nonpad.empty() && j >= nonpad[static_cast<size_t>(b)]) x += kNegInf;
          x = R(x);
        }
  }

  std::vector<double> qk(bias.size()), probs(bias.size());
  std::vector<double> snap;  // qk_matmul_output
  const bool want_qk = ctx.wants_output(3);
  if (want_qk) snap.resize(bias.size());
  std::vector<double> y(static_cast<size_t>(B * H * S * Dv), 0.0);
  std::vector<double> row(static_cast<size_t>(L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < S; ++i) {
        const size_t base = static_cast<size_t>(((b * H + h) * S + i) * L);
        bool all_masked = has_bias;
        for (int64_t j = 0; j < L; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < D; ++d) acc += R(q.at(b, h, i, d) * s) * R(k.at(b, kh, j, d) * s);
          double x = R(acc);
          if (want_qk && mode == 0) snap[base + static_cast<size_t>(j)] = x;
          if (softcap != 0) x = R(R(std::tanh(R(x / R(softcap)))) * R(softcap));
          if (want_qk && mode == 1) snap[base + static_cast<size_t>(j)] = x;
          const double bj = bias[base + static_cast<size_t>(j)];
          if (bj != kNegInf) all_masked = false;
          x = R(x + bj);
          if (want_qk && mode == 2) snap[base + static_cast<size_t>(j)] = x;
          row[static_cast<size_t>(j)] = round_to(softmax_t, x);
        }
        double mx = kNegInf;
        bool nan = false;
        for (double x : row) {
          if (std::isnan(x)) nan = true;
          mx = std::max(mx, x);
        }
        double sum = 0;
        for (double& x : row) {
          x = std::exp(x - mx);
          sum += x;
        }
        for (int64_t j = 0; j < L; ++j) {
          double p = nan ? std::numeric_limits<double>::quiet_NaN()
                         : R(round_to(softmax_t, row[static_cast<size_t>(j)] / sum));
          if (all_masked) p = 0;
          if (want_qk && mode == 3) snap[base + static_cast<size_t>(j)] = p;
          probs[base + static_cast<size_t>(j)] = p;
        }
        for (int64_t d = 0; d < Dv; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < L; ++j)
            acc += probs[base + static_cast<size_t>(j)] * v.at(b, kh, j, d);
          y[static_cast<size_t>(((b * H + h) * S + i) * Dv + d)] = R(acc);
        }
      }
    }

  if (q_t.rank() == 4) {
    ctx.set_output(0, from_f64(y, {B, H, S, Dv}, t));
  } else {
    std::vector<double> y3(y.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t d = 0; d < Dv; ++d)
            y3[static_cast<size_t>(((b * S + i) * H + h) * Dv + d)] =
                y[static_cast<size_t>(((b * H + h) * S + i) * Dv + d)];
    ctx.set_output(0, from_f64(y3, {B, S, H * Dv}, t));
  }
  ctx.set_output(1, from_f64(k.v, {B, k.heads, L, D}, t));
  ctx.set_output(2, from_f64(v.v, {B, v.heads, L, Dv}, t));
  if (want_qk) ctx.set_output(3, from_f64(snap, {B, H, S, L}, t));
}

}  // namespace

KPT_REGISTER_OP("", "Attention", 1, attention);

}  // namespace kpt::ops::nn
