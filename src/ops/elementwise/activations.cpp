// Element-wise activation functions: the Relu family, sigmoids, softplus/softsign, Gelu, Mish,
// Swish, Shrink.
#include <algorithm>
#include <cmath>
#include <string>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

template <typename Op>
void float_unary(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::map_float(ctx, ctx.input(0), op));
}

template <typename T>
T sigmoid(T x) {
  // Two forms so that exp never overflows.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <typename T>
T softplus(T x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

void relu(KernelContext& ctx) {
  // Integer inputs are allowed from opset 14.
  ctx.set_output(
      0, ew::map_numeric(ctx, ctx.input(0), []<typename T>(T x) { return x > T(0) ? x : T(0); }));
}

void leaky_relu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.01f);
  float_unary(ctx, [&]<typename T>(T x) { return x < 0 ? static_cast<T>(alpha) * x : x; });
}

void prelu(KernelContext& ctx) {
  // The slope broadcasts onto X (unidirectionally); the result keeps X's shape.
  const Tensor& x = ctx.input(0);
  Tensor slope = ctx.input(1);
  // Before opset 7 a 1-D slope holds one value per channel (axis 1).
  if (ctx.opset() < 7 && slope.rank() == 1 && x.rank() >= 2 && slope.numel() > 1 &&
      slope.numel() == x.dims()[1]) {
    Dims d(x.rank() - 1, 1);
    d[0] = slope.numel();
    slope = slope.reshaped(d);
  }
  Tensor out = ew::binary_same_type(ctx, x, slope, ew::AnyNumeric{}, []<typename T>(T v, T s) {
    return v < T(0) ? static_cast<T>(s * v) : v;
  });
  ctx.check(out.dims() == x.dims(), [&] {
    return "slope " + slope.describe() + " must broadcast to the shape of X " + x.describe();
  });
  ctx.set_output(0, out);
}

void elu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  float_unary(ctx, [&]<typename T>(T x) {
    return x < 0 ? static_cast<T>(alpha) * (std::exp(x) - T(1)) : x;
  });
}

void selu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
  float_unary(ctx, [&]<typename T>(T x) {
    const T g = static_cast<T>(gamma);
    return x > 0 ? g * x : g * (static_cast<T>(alpha) * std::exp(x) - static_cast<T>(alpha));
  });
}

void celu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  ctx.check(alpha != 0.0f, "Celu alpha must be non-zero");
  float_unary(ctx, [&]<typename T>(T x) {
    const T a = static_cast<T>(alpha);
    return std::max(T(0), x) + std::min(T(0), a * (std::exp(x / a) - T(1)));
  });
}

void sigmoid_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return sigmoid(x); });
}

void hard_sigmoid(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.2f);
  const float beta = ctx.attr_float("beta", 0.5f);
  float_unary(ctx, [&]<typename T>(T x) {
    return std::max(T(0), std::min(T(1), static_cast<T>(alpha) * x + static_cast<T>(beta)));
  });
}

void hard_swish(KernelContext& ctx) {
  float_unary(
      ctx, []<typename T>(T x) { return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5))); });
}

void softplus_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return softplus(x); });
}

void softsign(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return x / (T(1) + std::fabs(x)); });
}

void tanh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::tanh(x); });
}

void gelu(KernelContext& ctx) {
  const std::string approximate = ctx.attr_string("approximate", "none");
  if (approximate == "none") {
    float_unary(
        ctx, []<typename T>(T x) { return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2)))); });
  } else if (approximate == "tanh") {
    float_unary(ctx, []<typename T>(T x) {
      const T k = std::sqrt(T(2) / T(3.14159265358979323846));
      return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    });
  } else {
    ctx.fail("approximate must be 'none' or 'tanh', got '" + approximate + "'");
  }
}

void mish(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return x * std::tanh(softplus(x)); });
}

void swish(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  float_unary(ctx, [&]<typename T>(T x) { return x * sigmoid(static_cast<T>(alpha) * x); });
}

void thresholded_relu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  float_unary(ctx, [&]<typename T>(T x) { return x > static_cast<T>(alpha) ? x : T(0); });
}

void shrink(KernelContext& ctx) {
  // Integer inputs are allowed; lambd and bias are applied in double and converted back.
  const double lambd = ctx.attr_float("lambd", 0.5f);
  const double bias = ctx.attr_float("bias", 0.0f);
  ctx.set_output(0, ew::map_numeric(ctx, ctx.input(0), [&]<typename T>(T x) -> T {
                   const auto v = static_cast<double>(x);
                   if (v < -lambd) return static_cast<T>(v + bias);
                   if (v > lambd) return static_cast<T>(v - bias);
                   return T(0);
                 }));
}

}  // namespace

KPT_REGISTER_OP("", "Relu", 1, relu);
KPT_REGISTER_OP("", "LeakyRelu", 1, leaky_relu);
KPT_REGISTER_OP("", "PRelu", 1, prelu);
KPT_REGISTER_OP("", "Elu", 1, elu);
KPT_REGISTER_OP("", "Selu", 1, selu);
KPT_REGISTER_OP("", "Celu", 1, celu);
KPT_REGISTER_OP("", "Sigmoid", 1, sigmoid_kernel);
KPT_REGISTER_OP("", "HardSigmoid", 1, hard_sigmoid);
KPT_REGISTER_OP("", "HardSwish", 1, hard_swish);
KPT_REGISTER_OP("", "Softplus", 1, softplus_kernel);
KPT_REGISTER_OP("", "Softsign", 1, softsign);
KPT_REGISTER_OP("", "Tanh", 1, tanh_kernel);
KPT_REGISTER_OP("", "Gelu", 1, gelu);
KPT_REGISTER_OP("", "Mish", 1, mish);
KPT_REGISTER_OP("", "Swish", 1, swish);
KPT_REGISTER_OP("", "ThresholdedRelu", 1, thresholded_relu);
KPT_REGISTER_OP("", "Shrink", 1, shrink);

}  // namespace kpt::ops
