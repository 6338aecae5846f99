// LayerNormalization and RMSNormalization: normalize over the trailing dims from `axis` on, then
// scale (and shift) with tensors that broadcast onto the input.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

struct NormShape {
  int64_t axis;
  int64_t outer;
  int64_t inner;
};

NormShape norm_shape(KernelContext& ctx, const Tensor& x) {
  const int64_t rank = static_cast<int64_t>(x.rank());
  ctx.check(rank >= 1, [&] { return "input must have rank >= 1, got " + x.describe(); });
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), rank);
  const auto a = static_cast<size_t>(axis);
  return {axis, product(x.dims(), 0, a), product(x.dims(), a, x.rank())};
}

std::vector<double> broadcast_param(KernelContext& ctx, const Tensor& p, const Dims& x_dims,
                                    const char* what) {
  const Dims b = broadcast_dims(x_dims, p.dims());
  ctx.check(b == x_dims, [&] {
    return std::string(what) + " " + p.describe() + " does not broadcast onto the input shape " +
           dims_to_string(x_dims);
  });
  const std::vector<double> v = to_f64(p);
  const auto off = broadcast_offsets(x_dims, p.dims());
  std::vector<double> out(off.size());
  for (size_t i = 0; i < off.size(); ++i) out[i] = v[static_cast<size_t>(off[i])];
  return out;
}

DType stash_dtype(KernelContext& ctx) {
  const int64_t code = ctx.attr_int("stash_type", 1);
  if (!is_valid_dtype(static_cast<int32_t>(code)) || !is_float(static_cast<DType>(code)))
    ctx.fail("stash_type must be a floating element type, got " + std::to_string(code));
  return static_cast<DType>(code);
}

void layer_normalization(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()), [&] { return "X must be a float tensor, got " + x.describe(); });
  const NormShape s = norm_shape(ctx, x);
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const DType stash = stash_dtype(ctx);
  const std::vector<double> xv = to_f64(x);
  const std::vector<double> scale = broadcast_param(ctx, ctx.input(1), x.dims(), "Scale");
  std::vector<double> bias;
  if (ctx.has_input(2)) bias = broadcast_param(ctx, ctx.input(2), x.dims(), "B");

  std::vector<double> y(xv.size()), mean(static_cast<size_t>(s.outer)),
      inv_std(static_cast<size_t>(s.outer));
  for (int64_t o = 0; o < s.outer; ++o) {
    const size_t base = static_cast<size_t>(o * s.inner);
    double m = 0;
    for (int64_t i = 0; i < s.inner; ++i) m += xv[base + static_cast<size_t>(i)];
    m /= static_cast<double>(s.inner);
    double var = 0;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double d = xv[base + static_cast<size_t>(i)] - m;
      var += d * d;
    }
    var /= static_cast<double>(s.inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    mean[static_cast<size_t>(o)] = m;
    inv_std[static_cast<size_t>(o)] = inv;
    for (int64_t i = 0; i < s.inner; ++i) {
      const size_t k = base + static_cast<size_t>(i);
      y[k] = (xv[k] - m) * inv * scale[k] + (bias.empty() ? 0.0 : bias[k]);
    }
  }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
  Dims stat_dims = x.dims();
  for (size_t i = static_cast<size_t>(s.axis); i < stat_dims.size(); ++i) stat_dims[i] = 1;
  ctx.set_output(1, from_f64(mean, stat_dims, stash));
  ctx.set_output(2, from_f64(inv_std, stat_dims, stash));
}

void rms_normalization(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()), [&] { return "X must be a float tensor, got " + x.describe(); });
  const NormShape s = norm_shape(ctx, x);
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const DType stash = stash_dtype(ctx);
  const std::vector<double> xv = to_f64(x);
  const std::vector<double> scale = broadcast_param(ctx, ctx.input(1), x.dims(), "scale");
  std::vector<double> y(xv.size()), inv_rms(static_cast<size_t>(s.outer));
  for (int64_t o = 0; o < s.outer; ++o) {
    const size_t base = static_cast<size_t>(o * s.inner);
    double ms = 0;
    for (int64_t i = 0; i < s.inner; ++i)
      ms += xv[base + static_cast<size_t>(i)] * xv[base + static_cast<size_t>(i)];
    ms /= static_cast<double>(s.inner);
    const double rms = std::sqrt(ms + eps);
    inv_rms[static_cast<size_t>(o)] = 1.0 / rms;
    for (int64_t i = 0; i < s.inner; ++i) {
      const size_t k = base + static_cast<size_t>(i);
      y[k] = xv[k] / rms * scale[k];
    }
  }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
  // ONNX Runtime's SimplifiedLayerNormalization (the same computation) also gives inv_std_var.
  if (ctx.wants_output(1)) {
    Dims stat_dims = x.dims();
    for (size_t i = static_cast<size_t>(s.axis); i < stat_dims.size(); ++i) stat_dims[i] = 1;
    ctx.set_output(1, from_f64(inv_rms, stat_dims, stash));
  }
}

}  // namespace

KPT_REGISTER_OP("", "LayerNormalization", 1, layer_normalization);
KPT_REGISTER_OP("", "RMSNormalization", 1, rms_normalization);
// ONNX Runtime's contrib op of the same computation, which it registers in the default domain;
// `kpt export` writes it for RMSNormalization below opset 23.
KPT_REGISTER_OP("", "SimplifiedLayerNormalization", 1, rms_normalization);

}  // namespace kpt::ops::nn
