// Broadcast comparisons with bool results: Equal (numbers, bool, strings), Less, LessOrEqual,
// Greater, GreaterOrEqual.
#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

void equal_strings(KernelContext& ctx, const Tensor& a, const Tensor& b_in) {
  const Tensor b = ew::legacy_broadcast_rhs(ctx, a, b_in);
  const Dims dims = broadcast_dims(a.dims(), b.dims());
  Tensor out(DType::Bool, dims);
  const auto oa = broadcast_offsets(dims, a.dims());
  const auto ob = broadcast_offsets(dims, b.dims());
  const auto& sa = a.strings();
  const auto& sb = b.strings();
  bool* po = out.data<bool>();
  for (size_t i = 0; i < oa.size(); ++i) {
    po[i] = sa[static_cast<size_t>(oa[i])] == sb[static_cast<size_t>(ob[i])];
  }
  ctx.set_output(0, out);
}

void equal(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ew::check_same_dtype(ctx, a, b);
  if (a.dtype() == DType::String) return equal_strings(ctx, a, b);
  ctx.set_output(0, ew::binary_to_bool(ctx, a, b, ew::AnyPlain{},
                                       []<typename T>(T x, T y) { return x == y; }));
}

template <typename Op>
void compare(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::binary_to_bool(ctx, ctx.input(0), ctx.input(1), ew::AnyPlain{}, op));
}

void less(KernelContext& ctx) {
  compare(ctx, []<typename T>(T x, T y) { return x < y; });
}
void less_or_equal(KernelContext& ctx) {
  compare(ctx, []<typename T>(T x, T y) { return x <= y; });
}
void greater(KernelContext& ctx) {
  compare(ctx, []<typename T>(T x, T y) { return x > y; });
}
void greater_or_equal(KernelContext& ctx) {
  compare(ctx, []<typename T>(T x, T y) { return x >= y; });
}

}  // namespace

KPT_REGISTER_OP("", "Equal", 1, equal);
KPT_REGISTER_OP("", "Less", 1, less);
KPT_REGISTER_OP("", "LessOrEqual", 12, less_or_equal);
KPT_REGISTER_OP("", "Greater", 1, greater);
KPT_REGISTER_OP("", "GreaterOrEqual", 12, greater_or_equal);

}  // namespace kpt::ops
