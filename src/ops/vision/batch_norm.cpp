// BatchNormalization: inference form, and the training form (batch statistics plus updated
// running statistics) of opset 14+.
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void batch_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "BatchNormalization input");
  ctx.check(x.rank() >= 2, [&] { return "input must be N x C x ..., got " + x.describe(); });
  if (ctx.opset() < 9 && ctx.attr_int("spatial", 1) == 0)
    ctx.unsupported("BatchNormalization with spatial=0");
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  const bool training = ctx.opset() >= 14 && ctx.attr_int("training_mode", 0) != 0;
  if (ctx.opset() < 14 && ctx.wants_output(1))
    ctx.unsupported("the training outputs of BatchNormalization before opset 14");
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t sp = n * c == 0 ? 0 : x.numel() / (n * c);
  const std::vector<double> xv = to_f64(x);
  const std::vector<double> scale = to_f64(ctx.input(1)), bias = to_f64(ctx.input(2));
  std::vector<double> mean = to_f64(ctx.input(3)), var = to_f64(ctx.input(4));
  for (const std::vector<double>* v :
       std::initializer_list<const std::vector<double>*>{&scale, &bias, &mean, &var})
    ctx.check(static_cast<int64_t>(v->size()) == c,
              "scale, B, input_mean and input_var must have one value per channel (" +
                  std::to_string(c) + ")");
  std::vector<double> use_mean = mean, use_var = var;
  if (training) {
    const double count = static_cast<double>(n * sp);
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0, s2 = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < sp; ++i) s += xv[static_cast<size_t>((b * c + ch) * sp + i)];
      const double m = s / count;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < sp; ++i) {
          const double d = xv[static_cast<size_t>((b * c + ch) * sp + i)] - m;
          s2 += d * d;
        }
      use_mean[static_cast<size_t>(ch)] = m;
      use_var[static_cast<size_t>(ch)] = s2 / count;
    }
  }
  std::vector<double> y(xv.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t ch = static_cast<size_t>((static_cast<int64_t>(i) / std::max<int64_t>(sp, 1)) % c);
    y[i] = (xv[i] - use_mean[ch]) / std::sqrt(use_var[ch] + eps) * scale[ch] + bias[ch];
  }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
  if (training) {
    std::vector<double> rm(static_cast<size_t>(c)), rv(static_cast<size_t>(c));
    for (size_t ch = 0; ch < rm.size(); ++ch) {
      rm[ch] = mean[ch] * momentum + use_mean[ch] * (1 - momentum);
      rv[ch] = var[ch] * momentum + use_var[ch] * (1 - momentum);
    }
    ctx.set_output(1, from_f64(rm, ctx.input(3).dims(), ctx.input(3).dtype()));
    ctx.set_output(2, from_f64(rv, ctx.input(4).dims(), ctx.input(4).dtype()));
  }
}

}  // namespace

KPT_REGISTER_OP("", "BatchNormalization", 1, batch_norm);

}  // namespace kpt::ops::vision
