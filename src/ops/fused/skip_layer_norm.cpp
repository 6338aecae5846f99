// com.microsoft.SkipLayerNormalization and SkipSimplifiedLayerNormalization (ONNX Runtime
// contrib semantics): the residual add of a transformer block and the normalization after it
// as one op. With s = input + skip (+ bias), normalized over the last axis:
//   SkipLayerNormalization:           output = (s - mean(s)) / sqrt(var(s) + eps) * gamma + beta
//   SkipSimplifiedLayerNormalization: output = s / sqrt(mean(s^2) + eps) * gamma
// Optional outputs: mean (SkipLayerNormalization only), inv_std_var ([..., 1], float), and
// input_skip_bias_sum = s, which pre-LN transformers carry on as the residual stream.
#include <cmath>

#include "analysis/infer_util.hpp"
#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::fused {
namespace {

using nn::from_f64;
using nn::to_f64;

// `t` repeated onto `dims` (which it must broadcast onto without growing it).
std::vector<double> broadcast_onto(KernelContext& ctx, const Tensor& t, const Dims& dims,
                                   DType dtype, const char* what) {
  ctx.check(t.dtype() == dtype,
            [&] { return std::string(what) + " must have the input's type, got " + t.describe(); });
  ctx.check(broadcast_dims(dims, t.dims()) == dims, [&] {
    return std::string(what) + " " + t.describe() + " does not broadcast onto the input " +
           dims_to_string(dims);
  });
  const std::vector<double> v = to_f64(t);
  const auto off = broadcast_offsets(dims, t.dims());
  std::vector<double> out(off.size());
  for (size_t i = 0; i < off.size(); ++i) out[i] = v[static_cast<size_t>(off[i])];
  return out;
}

// gamma, beta and bias are vectors over the hidden (last) axis.
std::vector<double> hidden_vector(KernelContext& ctx, size_t i, int64_t hidden, DType dtype,
                                  const char* what) {
  const Tensor& t = ctx.input(i);
  ctx.check(t.rank() == 1 && t.dim(0) == hidden, [&] {
    return std::string(what) + " must be 1-D of the hidden size " + std::to_string(hidden) +
           ", got " + t.describe();
  });
  ctx.check(t.dtype() == dtype,
            [&] { return std::string(what) + " must have the input's type, got " + t.describe(); });
  return to_f64(t);
}

DType stats_dtype(DType input) {
  return input == DType::F64 ? DType::F64 : DType::F32;
}

void skip_norm(KernelContext& ctx, bool simplified) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()),
            [&] { return "input must be a float tensor, got " + x.describe(); });
  ctx.check(x.rank() >= 1, [&] { return "input must have rank >= 1, got " + x.describe(); });
  const Dims& dims = x.dims();
  const int64_t hidden = x.dim(-1);
  const int64_t rows = hidden == 0 ? 0 : x.numel() / hidden;
  const double eps = ctx.attr_float("epsilon", 1e-12f);
  std::vector<double> s = to_f64(x);
  const std::vector<double> skip = broadcast_onto(ctx, ctx.input(1), dims, x.dtype(), "skip");
  const std::vector<double> gamma = hidden_vector(ctx, 2, hidden, x.dtype(), "gamma");
  std::vector<double> beta, bias;
  const size_t bias_index = simplified ? 3 : 4;
  if (!simplified && ctx.has_input(3)) beta = hidden_vector(ctx, 3, hidden, x.dtype(), "beta");
  if (ctx.has_input(bias_index)) bias = hidden_vector(ctx, bias_index, hidden, x.dtype(), "bias");
  if (simplified)
    ctx.check(!ctx.wants_output(1), "SkipSimplifiedLayerNormalization has no mean output");

  std::vector<double> y(s.size()), mean(static_cast<size_t>(rows)),
      inv_std(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r * hidden);
    for (int64_t h = 0; h < hidden; ++h) {
      const size_t k = base + static_cast<size_t>(h);
      s[k] += skip[k] + (bias.empty() ? 0.0 : bias[static_cast<size_t>(h)]);
    }
    double m = 0;
    if (!simplified) {
      for (int64_t h = 0; h < hidden; ++h) m += s[base + static_cast<size_t>(h)];
      m /= static_cast<double>(hidden);
    }
    double var = 0;  // mean of squares around m (m = 0 for the simplified norm)
    for (int64_t h = 0; h < hidden; ++h) {
      const double d = s[base + static_cast<size_t>(h)] - m;
      var += d * d;
    }
    var /= static_cast<double>(hidden);
    const double inv = 1.0 / std::sqrt(var + eps);
    mean[static_cast<size_t>(r)] = m;
    inv_std[static_cast<size_t>(r)] = inv;
    for (int64_t h = 0; h < hidden; ++h) {
      const size_t k = base + static_cast<size_t>(h);
      const auto hh = static_cast<size_t>(h);
      y[k] = (s[k] - m) * inv * gamma[hh] + (beta.empty() ? 0.0 : beta[hh]);
    }
  }
  ctx.set_output(0, from_f64(y, dims, x.dtype()));
  Dims stat_dims = dims;
  stat_dims.back() = 1;
  if (!simplified) ctx.set_output(1, from_f64(mean, stat_dims, stats_dtype(x.dtype())));
  ctx.set_output(2, from_f64(inv_std, stat_dims, stats_dtype(x.dtype())));
  ctx.set_output(3, from_f64(s, dims, x.dtype()));
}

void skip_layer_norm(KernelContext& ctx) {
  skip_norm(ctx, false);
}

void skip_simplified_layer_norm(KernelContext& ctx) {
  skip_norm(ctx, true);
}

void infer_skip_norm(InferContext& ctx) {
  analysis::same_as_input(ctx, 0, 0);
  const DType dtype = analysis::input_dtype(ctx, 0);
  const DType stats = dtype == DType::Undefined ? dtype : stats_dtype(dtype);
  auto shape = analysis::input_shape(ctx, 0);
  std::optional<ir::Shape> stat_shape;
  if (shape && !shape->empty()) {
    stat_shape = *shape;
    stat_shape->back() = ir::Dim::of(1);
  }
  for (size_t o = 1; o < 3 && o < ctx.outputs.size(); ++o)
    analysis::set_output(ctx, o, stats, stat_shape);
  if (ctx.outputs.size() > 3) analysis::same_as_input(ctx, 3, 0);
}

}  // namespace

KPT_REGISTER_OP("com.microsoft", "SkipLayerNormalization", 1, skip_layer_norm, infer_skip_norm);
KPT_REGISTER_OP("com.microsoft", "SkipSimplifiedLayerNormalization", 1, skip_simplified_layer_norm,
                infer_skip_norm);

}  // namespace kpt::ops::fused
