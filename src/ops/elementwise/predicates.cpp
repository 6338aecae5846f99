// Element-wise tests and bit negations: IsNaN, IsInf, Not, BitwiseNot.
#include <cmath>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

template <typename Pred>
void float_predicate(KernelContext& ctx, Pred pred) {
  const Tensor x = to_compute(ctx.input(0));
  Tensor out(DType::Bool, x.dims());
  ew::dispatch_float_op(ctx, x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    bool* po = out.data<bool>();
    for (int64_t i = 0; i < x.numel(); ++i) po[i] = pred(px[i]);
  });
  ctx.set_output(0, out);
}

void isnan_kernel(KernelContext& ctx) {
  float_predicate(ctx, []<typename T>(T x) { return std::isnan(x); });
}

void isinf_kernel(KernelContext& ctx) {
  const bool neg = ctx.attr_int("detect_negative", 1) != 0;
  const bool pos = ctx.attr_int("detect_positive", 1) != 0;
  float_predicate(
      ctx, [&]<typename T>(T x) { return std::isinf(x) && ((x > 0 && pos) || (x < 0 && neg)); });
}

void not_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.dtype() == DType::Bool,
            [&] { return "Not expects a bool tensor, got " + x.describe(); });
  Tensor out(DType::Bool, x.dims());
  const bool* px = x.data<bool>();
  bool* po = out.data<bool>();
  for (int64_t i = 0; i < x.numel(); ++i) po[i] = !px[i];
  ctx.set_output(0, out);
}

void bitwise_not(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor out(x.dtype(), x.dims());
  ew::dispatch_integer(ctx, x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) po[i] = static_cast<T>(~px[i]);
  });
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "IsNaN", 1, isnan_kernel);
KPT_REGISTER_OP("", "IsInf", 1, isinf_kernel);
KPT_REGISTER_OP("", "Not", 1, not_kernel);
KPT_REGISTER_OP("", "BitwiseNot", 1, bitwise_not);

}  // namespace kpt::ops
