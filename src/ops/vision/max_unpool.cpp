// MaxUnpool: places values at the flat positions MaxPool's Indices recorded; the rest is zero.
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void max_unpool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  require_float(ctx, x, "MaxUnpool input");
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  ctx.check(ind.dims() == x.dims(), "indices must have the input's shape");
  const size_t r = x.rank() - 2;
  const auto kernel = ctx.attr_ints("kernel_shape");
  ctx.check(kernel.size() == r, "kernel_shape must have one value per spatial dim");
  const auto strides = ctx.attr_ints("strides", std::vector<int64_t>(r, 1));
  const auto pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  ctx.check(strides.size() == r && pads.size() == 2 * r, "strides and pads must match the rank");
  Dims y_dims = {x.dim(0), x.dim(1)};
  for (size_t d = 0; d < r; ++d)
    y_dims.push_back((x.dims()[d + 2] - 1) * strides[d] - pads[d] - pads[d + r] + kernel[d]);
  // Indices address the default output shape; an explicit output_shape only pads its end.
  const Dims base = y_dims;
  if (ctx.has_input(2)) {
    y_dims = ctx.input(2).to_i64_vector();
    ctx.check(y_dims.size() == x.rank(), "output_shape must have the input's rank");
    ctx.check(y_dims[0] == base[0] && y_dims[1] == base[1],
              "output_shape must keep the input's batch and channel dims");
  }
  check_output_size(ctx, y_dims);
  check_output_size(ctx, base);
  const int64_t total = element_count(base);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)), 0.0);
  const std::vector<double> xv = to_f64(x);
  std::vector<int64_t> coord;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t at = ind.get_i64(i);
    ctx.check(at >= 0 && at < total, "index " + std::to_string(at) + " is outside the output");
    unravel(at, base, coord);
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < coord.size(); ++d) {
      inside = inside && coord[d] < y_dims[d];
      off = off * y_dims[d] + coord[d];
    }
    if (inside) y[static_cast<size_t>(off)] = xv[static_cast<size_t>(i)];
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "MaxUnpool", 1, max_unpool);

}  // namespace kpt::ops::vision
