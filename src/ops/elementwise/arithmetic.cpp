// Element-wise binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div.
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

template <typename Op>
void binary(KernelContext& ctx, Op op) {
  const Tensor a = to_compute(ctx.input(0));
  const Tensor b = to_compute(ctx.input(1));
  ctx.check(a.dtype() == b.dtype(),
            "inputs have different element types " + a.describe() + " and " + b.describe());
  const Dims out_dims = broadcast_dims(a.dims(), b.dims());
  Tensor out(a.dtype(), out_dims);
  auto oa = broadcast_offsets(out_dims, a.dims());
  auto ob = broadcast_offsets(out_dims, b.dims());
  dispatch(a.dtype(), ctx.node().op_type, [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = op(pa[oa[i]], pb[ob[i]]);
  });
  ctx.set_output(0, from_compute(out, ctx.input(0).dtype()));
}

void add(KernelContext& ctx) {
  binary(ctx, []<typename T>(T x, T y) { return static_cast<T>(x + y); });
}
void sub(KernelContext& ctx) {
  binary(ctx, []<typename T>(T x, T y) { return static_cast<T>(x - y); });
}
void mul(KernelContext& ctx) {
  binary(ctx, []<typename T>(T x, T y) { return static_cast<T>(x * y); });
}
void div(KernelContext& ctx) {
  binary(ctx, []<typename T>(T x, T y) -> T {
    if constexpr (std::is_integral_v<T>) {
      if (y == 0) fail("integer division by zero");
    }
    return static_cast<T>(x / y);
  });
}

}  // namespace

KPT_REGISTER_OP("", "Add", 1, add);
KPT_REGISTER_OP("", "Sub", 1, sub);
KPT_REGISTER_OP("", "Mul", 1, mul);
KPT_REGISTER_OP("", "Div", 1, div);

}  // namespace kpt::ops
