// InstanceNormalization and GroupNormalization: normalize over groups of channels (one
// channel per group for InstanceNormalization) and the spatial dims of each batch item.
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

// Normalizes x (N x C x ...) over `groups` groups of C/groups channels each; scale and bias
// have one value per channel.
std::vector<double> normalize_groups(const std::vector<double>& xv, const Dims& d, int64_t groups,
                                     const std::vector<double>& scale,
                                     const std::vector<double>& bias, double eps) {
  const int64_t n = d[0], c = d[1];
  const int64_t sp = product(Dims(d.begin() + 2, d.end()));
  const int64_t cpg = c / groups, len = cpg * sp;
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      const size_t base = static_cast<size_t>((b * c + g * cpg) * sp);
      double s = 0;
      for (int64_t i = 0; i < len; ++i) s += xv[base + static_cast<size_t>(i)];
      const double mean = s / static_cast<double>(len);
      double s2 = 0;
      for (int64_t i = 0; i < len; ++i) {
        const double dd = xv[base + static_cast<size_t>(i)] - mean;
        s2 += dd * dd;
      }
      const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(len) + eps);
      for (int64_t i = 0; i < len; ++i) {
        const size_t ch = static_cast<size_t>(g * cpg + i / std::max<int64_t>(sp, 1));
        const size_t k = base + static_cast<size_t>(i);
        y[k] = (xv[k] - mean) * inv * scale[ch] + bias[ch];
      }
    }
  return y;
}

void instance_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "InstanceNormalization input");
  ctx.check(x.rank() >= 2, [&] { return "input must be N x C x ..., got " + x.describe(); });
  const std::vector<double> scale = to_f64(ctx.input(1)), bias = to_f64(ctx.input(2));
  ctx.check(static_cast<int64_t>(scale.size()) == x.dim(1) &&
                static_cast<int64_t>(bias.size()) == x.dim(1),
            "scale and B must have one value per channel");
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  ctx.set_output(0, from_f64(normalize_groups(to_f64(x), x.dims(), x.dim(1), scale, bias, eps),
                             x.dims(), x.dtype()));
}

void group_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "GroupNormalization input");
  ctx.check(x.rank() >= 2, [&] { return "input must be N x C x ..., got " + x.describe(); });
  ctx.check(ctx.node().has_attr("num_groups"), "num_groups attribute is required");
  const int64_t groups = ctx.attr_int("num_groups", 1);
  const int64_t c = x.dim(1);
  ctx.check(groups >= 1 && c % groups == 0,
            "num_groups must be positive and divide the channel count " + std::to_string(c));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  std::vector<double> scale = to_f64(ctx.input(1)), bias = to_f64(ctx.input(2));
  ctx.check(scale.size() == bias.size(), "scale and bias must have the same size");
  const int64_t len = static_cast<int64_t>(scale.size());
  // Opset 18 has one scale/bias per group, opset 21 one per channel.
  const bool per_group = ctx.opset() < 21 ? (len == groups) : (len != c && len == groups);
  if (per_group) {
    std::vector<double> s(static_cast<size_t>(c)), b(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) {
      s[static_cast<size_t>(ch)] = scale[static_cast<size_t>(ch / (c / groups))];
      b[static_cast<size_t>(ch)] = bias[static_cast<size_t>(ch / (c / groups))];
    }
    scale.swap(s);
    bias.swap(b);
  } else {
    ctx.check(len == c, "scale and bias must have one value per " +
                            std::string(ctx.opset() < 21 ? "group" : "channel"));
  }
  ctx.set_output(0, from_f64(normalize_groups(to_f64(x), x.dims(), groups, scale, bias, eps),
                             x.dims(), x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "InstanceNormalization", 1, instance_norm);
KPT_REGISTER_OP("", "GroupNormalization", 1, group_norm);

}  // namespace kpt::ops::vision
