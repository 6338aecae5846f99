// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: one value per (batch, channel).
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

enum class Kind { Max, Average, Lp };

void global_pool(KernelContext& ctx, Kind kind) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, ctx.node().op_type + " input");
  ctx.check(x.rank() >= 2, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  const double p = kind != Kind::Lp   ? 2.0
                   : ctx.opset() >= 2 ? static_cast<double>(ctx.attr_int("p", 2))
                                      : static_cast<double>(ctx.attr_float("p", 2.0f));
  const int64_t nc = x.dim(0) * x.dim(1);
  const int64_t sp = nc == 0 ? 0 : x.numel() / nc;
  Dims y_dims = x.dims();
  for (size_t d = 2; d < y_dims.size(); ++d) y_dims[d] = 1;
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(static_cast<size_t>(nc));
  for (int64_t b = 0; b < nc; ++b) {
    const double* xb = xv.data() + b * sp;
    double acc = kind == Kind::Max ? -INFINITY : 0.0;
    for (int64_t i = 0; i < sp; ++i) {
      if (kind == Kind::Max)
        acc = std::max(acc, xb[i]);
      else if (kind == Kind::Average)
        acc += xb[i];
      else
        acc += std::pow(std::fabs(xb[i]), p);
    }
    if (kind == Kind::Average) acc /= static_cast<double>(sp);
    if (kind == Kind::Lp) acc = std::pow(acc, 1.0 / p);
    y[static_cast<size_t>(b)] = acc;
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

void global_average_pool(KernelContext& ctx) {
  global_pool(ctx, Kind::Average);
}
void global_max_pool(KernelContext& ctx) {
  global_pool(ctx, Kind::Max);
}
void global_lp_pool(KernelContext& ctx) {
  global_pool(ctx, Kind::Lp);
}

}  // namespace

KPT_REGISTER_OP("", "GlobalAveragePool", 1, global_average_pool);
KPT_REGISTER_OP("", "GlobalMaxPool", 1, global_max_pool);
KPT_REGISTER_OP("", "GlobalLpPool", 1, global_lp_pool);

}  // namespace kpt::ops::vision
