// Element-wise unary math: Abs, Neg, Sign, Reciprocal, Exp, Log, Sqrt, rounding, trigonometric
// and hyperbolic functions, Erf.
#include <cmath>
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

template <typename Op>
void float_unary(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::map_float(ctx, ctx.input(0), op));
}

void abs_kernel(KernelContext& ctx) {
  ctx.set_output(0, ew::map_numeric(ctx, ctx.input(0), []<typename T>(T x) -> T {
                   if constexpr (std::is_unsigned_v<T>) {
                     return x;
                   } else if constexpr (std::is_integral_v<T>) {
                     // Wraps for the most negative value, as two's complement hardware does.
                     using U = std::make_unsigned_t<T>;
                     return x < 0 ? static_cast<T>(U(0) - static_cast<U>(x)) : x;
                   } else {
                     return std::fabs(x);
                   }
                 }));
}

void neg_kernel(KernelContext& ctx) {
  ctx.set_output(0, ew::map_numeric(ctx, ctx.input(0), []<typename T>(T x) -> T {
                   if constexpr (std::is_integral_v<T>) {
                     using U = std::make_unsigned_t<T>;
                     return static_cast<T>(U(0) - static_cast<U>(x));
                   } else {
                     return -x;
                   }
                 }));
}

void sign_kernel(KernelContext& ctx) {
  ctx.set_output(0, ew::map_numeric(ctx, ctx.input(0), []<typename T>(T x) -> T {
                   if constexpr (std::is_unsigned_v<T>) {
                     return x > 0 ? T(1) : T(0);
                   } else if constexpr (std::is_integral_v<T>) {
                     return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
                   } else {
                     if (std::isnan(x)) return x;
                     return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
                   }
                 }));
}

void reciprocal(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return T(1) / x; });
}
void exp_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::exp(x); });
}
void log_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::log(x); });
}
void sqrt_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::sqrt(x); });
}
void ceil_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::ceil(x); });
}
void floor_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::floor(x); });
}
// Halves round to the even neighbour (the default floating-point rounding mode).
void round_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::nearbyint(x); });
}
void sin_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::sin(x); });
}
void cos_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::cos(x); });
}
void tan_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::tan(x); });
}
void asin_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::asin(x); });
}
void acos_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::acos(x); });
}
void atan_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::atan(x); });
}
void sinh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::sinh(x); });
}
void cosh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::cosh(x); });
}
void asinh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::asinh(x); });
}
void acosh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::acosh(x); });
}
void atanh_kernel(KernelContext& ctx) {
  float_unary(ctx, []<typename T>(T x) { return std::atanh(x); });
}
void erf_kernel(KernelContext& ctx) {
  // Erf also accepts integer tensors (opset 9+); they are computed in double and truncated.
  const Tensor& x = ctx.input(0);
  if (is_integer(x.dtype())) {
    ctx.set_output(0, ew::map_numeric(ctx, x, []<typename T>(T v) {
                     return static_cast<T>(std::erf(static_cast<double>(v)));
                   }));
    return;
  }
  float_unary(ctx, []<typename T>(T v) { return std::erf(v); });
}

}  // namespace

KPT_REGISTER_OP("", "Abs", 1, abs_kernel);
KPT_REGISTER_OP("", "Neg", 1, neg_kernel);
KPT_REGISTER_OP("", "Sign", 1, sign_kernel);
KPT_REGISTER_OP("", "Reciprocal", 1, reciprocal);
KPT_REGISTER_OP("", "Exp", 1, exp_kernel);
KPT_REGISTER_OP("", "Log", 1, log_kernel);
KPT_REGISTER_OP("", "Sqrt", 1, sqrt_kernel);
KPT_REGISTER_OP("", "Ceil", 1, ceil_kernel);
KPT_REGISTER_OP("", "Floor", 1, floor_kernel);
KPT_REGISTER_OP("", "Round", 1, round_kernel);
KPT_REGISTER_OP("", "Sin", 1, sin_kernel);
KPT_REGISTER_OP("", "Cos", 1, cos_kernel);
KPT_REGISTER_OP("", "Tan", 1, tan_kernel);
KPT_REGISTER_OP("", "Asin", 1, asin_kernel);
KPT_REGISTER_OP("", "Acos", 1, acos_kernel);
KPT_REGISTER_OP("", "Atan", 1, atan_kernel);
KPT_REGISTER_OP("", "Sinh", 1, sinh_kernel);
KPT_REGISTER_OP("", "Cosh", 1, cosh_kernel);
KPT_REGISTER_OP("", "Asinh", 1, asinh_kernel);
KPT_REGISTER_OP("", "Acosh", 1, acosh_kernel);
KPT_REGISTER_OP("", "Atanh", 1, atanh_kernel);
KPT_REGISTER_OP("", "Erf", 1, erf_kernel);

}  // namespace kpt::ops
