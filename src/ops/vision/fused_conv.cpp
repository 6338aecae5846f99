// com.microsoft FusedConv (ONNX Runtime's contrib op): Y = activation(Conv(X, W, B) + Z), with
// Conv's attributes plus `activation` and `activation_params`. The optimizer produces it from
// Conv (+ Add) (+ Relu) chains; this is its reference kernel.
#include "ops/vision/fused_conv.hpp"

#include <algorithm>
#include <cmath>

#include "ops/vision/conv_core.hpp"
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

// activation(v) as ORT's MLAS activations define them.
double activate(const std::string& act, const std::vector<float>& params, double v) {
  if (act.empty()) return v;
  if (act == "Relu") return std::max(v, 0.0);
  if (act == "LeakyRelu") return v >= 0 ? v : v * static_cast<double>(params[0]);
  if (act == "Sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (act == "Tanh") return std::tanh(v);
  if (act == "Clip")
    return std::clamp(v, static_cast<double>(params[0]), static_cast<double>(params[1]));
  // HardSigmoid: max(0, min(1, alpha * v + beta)).
  return std::clamp(static_cast<double>(params[0]) * v + static_cast<double>(params[1]), 0.0, 1.0);
}

void check_activation(const KernelContext& ctx, const std::string& act,
                      const std::vector<float>& params) {
  size_t want = 0;
  if (act == "LeakyRelu")
    want = 1;
  else if (act == "Clip" || act == "HardSigmoid")
    want = 2;
  else if (!act.empty() && act != "Relu" && act != "Sigmoid" && act != "Tanh")
    ctx.unsupported("FusedConv activation '" + act +
                    "' (expected one of Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid)");
  ctx.check(params.size() >= want, "activation " + act + " needs " + std::to_string(want) +
                                       " activation_params, got " + std::to_string(params.size()));
}

}  // namespace

Tensor fused_conv_nchw(const KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor* b,
                       const Tensor* z) {
  require_float(ctx, x, "FusedConv input");
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  ctx.check(w.rank() == x.rank(), [&] {
    return "weight rank must equal input rank, got " + w.describe() + " for input " + x.describe();
  });
  const std::string act = ctx.attr_string("activation", "");
  const std::vector<float> params = ctx.attr_floats("activation_params");
  check_activation(ctx, act, params);
  const int64_t group = ctx.attr_int("group", 1);
  ctx.check(group >= 1 && x.dim(1) == w.dim(1) * group && w.dim(0) % group == 0,
            "input channels " + std::to_string(x.dim(1)) + " must equal weight dim 1 (" +
                std::to_string(w.dim(1)) + ") times group " + std::to_string(group) +
                ", and output channels must be divisible by group");
  const Dims in(x.dims().begin() + 2, x.dims().end());
  const Window win =
      make_window(ctx, in, std::vector<int64_t>(w.dims().begin() + 2, w.dims().end()), false);
  Dims out_dims = {x.dim(0), w.dim(0)};
  out_dims.insert(out_dims.end(), win.out.begin(), win.out.end());
  std::vector<double> y = conv_core(to_f64(x), x.dims(), to_f64(w), w.dims(), group, win);
  if (b) {
    ctx.check(b->numel() == w.dim(0), [&] {
      return "bias must have one value per output channel (" + std::to_string(w.dim(0)) +
             "), got " + b->describe();
    });
    add_bias(y, to_f64(*b), out_dims);
  }
  if (z) {
    ctx.check(z->dims() == out_dims, [&] {
      return "Z must have the output's shape " + dims_to_string(out_dims) + ", got " +
             z->describe();
    });
    const std::vector<double> zv = to_f64(*z);
    for (size_t i = 0; i < y.size(); ++i) y[i] += zv[i];
  }
  for (double& v : y) v = activate(act, params, v);
  return from_f64(y, out_dims, x.dtype());
}

namespace {

void fused_conv(KernelContext& ctx) {
  ctx.set_output(0, fused_conv_nchw(ctx, ctx.input(0), ctx.input(1),
                                    ctx.has_input(2) ? &ctx.input(2) : nullptr,
                                    ctx.has_input(3) ? &ctx.input(3) : nullptr));
}

// The output has Conv's type and shape.
void infer_fused_conv(InferContext& ctx) {
  const InferFn conv = Registry::instance().find_infer("", "Conv", 11);
  if (conv != nullptr) conv(ctx);
}

}  // namespace

KPT_REGISTER_OP("com.microsoft", "FusedConv", 1, fused_conv);
KPT_REGISTER_INFER("com.microsoft", "FusedConv", infer_fused_conv);

}  // namespace kpt::ops::vision
