// Conv, ConvInteger and QLinearConv: one direct N-D convolution over doubles (exact for the
// integer forms, whose products and sums stay far below 2^53).
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/vision/conv_core.hpp"
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

std::vector<int64_t> kernel_of(const KernelContext& ctx, const Dims& wd) {
  std::vector<int64_t> k(wd.begin() + 2, wd.end());
  if (ctx.node().has_attr("kernel_shape")) {
    const auto attr = ctx.attr_ints("kernel_shape");
    ctx.check(attr == k, [&] {
      return "kernel_shape " + dims_to_string(attr) + " does not match the weight's spatial dims " +
             dims_to_string(k);
    });
  }
  return k;
}

struct Prepared {
  Window win;
  int64_t group;
  Dims out_dims;
};

Prepared prepare(const KernelContext& ctx, const Tensor& x, const Tensor& w) {
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  ctx.check(w.rank() == x.rank(), [&] {
    return "weight rank must equal input rank, got " + w.describe() + " for input " + x.describe();
  });
  Prepared p;
  p.group = ctx.attr_int("group", 1);
  ctx.check(p.group >= 1, "group must be positive");
  ctx.check(x.dim(1) == w.dim(1) * p.group,
            "input channels " + std::to_string(x.dim(1)) + " must equal weight dim 1 (" +
                std::to_string(w.dim(1)) + ") times group " + std::to_string(p.group));
  ctx.check(w.dim(0) % p.group == 0, "output channels must be divisible by group");
  Dims in(x.dims().begin() + 2, x.dims().end());
  p.win = make_window(ctx, in, kernel_of(ctx, w.dims()), false);
  p.out_dims = {x.dim(0), w.dim(0)};
  p.out_dims.insert(p.out_dims.end(), p.win.out.begin(), p.win.out.end());
  return p;
}

void conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  require_float(ctx, x, "Conv input");
  const Prepared p = prepare(ctx, x, w);
  std::vector<double> y = conv_core(to_f64(x), x.dims(), to_f64(w), w.dims(), p.group, p.win);
  if (ctx.has_input(2)) {
    const Tensor& b = ctx.input(2);
    ctx.check(b.numel() == w.dim(0), "bias must have one value per output channel");
    add_bias(y, to_f64(b), p.out_dims);
  }
  ctx.set_output(0, from_f64(y, p.out_dims, x.dtype()));
}

// Subtracts a zero point that is a scalar or (for weights) one value per output channel.
std::vector<double> dequant_zero(const KernelContext& ctx, const Tensor& t, const Tensor* zp,
                                 const std::string& what) {
  std::vector<double> v = to_f64(t);
  if (zp == nullptr) return v;
  const std::vector<double> z = to_f64(*zp);
  if (z.size() == 1) {
    for (double& e : v) e -= z[0];
    return v;
  }
  ctx.check(static_cast<int64_t>(z.size()) == t.dim(0),
            what + " zero point must be a scalar or have one value per output channel");
  const int64_t per = t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
  for (size_t i = 0; i < v.size(); ++i) v[i] -= z[i / static_cast<size_t>(per)];
  return v;
}

void conv_integer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Prepared p = prepare(ctx, x, w);
  const Tensor* xz = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* wz = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  ctx.check(xz == nullptr || xz->numel() == 1, "x_zero_point must be a scalar");
  // Padding is with the zero point, i.e. zero after subtraction.
  std::vector<double> y = conv_core(dequant_zero(ctx, x, xz, "x"), x.dims(),
                                    dequant_zero(ctx, w, wz, "w"), w.dims(), p.group, p.win);
  ctx.set_output(0, from_f64(y, p.out_dims, DType::I32));
}

void qlinear_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(3);
  const Prepared p = prepare(ctx, x, w);
  const Tensor& xs = ctx.input(1);
  const Tensor& ws = ctx.input(4);
  const Tensor& ys = ctx.input(6);
  ctx.check(xs.numel() == 1 && ys.numel() == 1, "x_scale and y_scale must be scalars");
  const int64_t m = w.dim(0);
  ctx.check(ws.numel() == 1 || ws.numel() == m,
            "w_scale must be a scalar or have one value per output channel");
  std::vector<double> y =
      conv_core(dequant_zero(ctx, x, &ctx.input(2), "x"), x.dims(),
                dequant_zero(ctx, w, &ctx.input(5), "w"), w.dims(), p.group, p.win);
  if (ctx.has_input(8)) {
    const Tensor& b = ctx.input(8);
    ctx.check(b.numel() == m, "bias must have one value per output channel");
    add_bias(y, to_f64(b), p.out_dims);
  }
  const Tensor* yz_t = ctx.has_input(7) ? &ctx.input(7) : nullptr;
  const DType out_type = yz_t ? yz_t->dtype() : x.dtype();
  const double yz = yz_t ? yz_t->get_f64(0) : 0.0;
  double lo = 0, hi = 255;
  if (out_type == DType::I8)
    lo = -128, hi = 127;
  else if (out_type != DType::U8)
    ctx.unsupported("QLinearConv output type " + std::string(dtype_name(out_type)));
  const float xs_v = static_cast<float>(xs.get_f64(0));
  const float ys_v = static_cast<float>(ys.get_f64(0));
  const int64_t per = product(p.win.out);
  for (size_t i = 0; i < y.size(); ++i) {
    const int64_t oc = (static_cast<int64_t>(i) / per) % m;
    const float scale = xs_v * static_cast<float>(ws.get_f64(ws.numel() == 1 ? 0 : oc)) / ys_v;
    const double q = std::nearbyint(static_cast<double>(static_cast<float>(y[i]) * scale)) + yz;
    y[i] = std::clamp(q, lo, hi);
  }
  ctx.set_output(0, from_f64(y, p.out_dims, out_type));
}

}  // namespace

KPT_REGISTER_OP("", "Conv", 1, conv);
KPT_REGISTER_OP("", "ConvInteger", 1, conv_integer);
KPT_REGISTER_OP("", "QLinearConv", 1, qlinear_conv);

}  // namespace kpt::ops::vision
