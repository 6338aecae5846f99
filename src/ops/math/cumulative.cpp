// CumSum and CumProd along one axis, with the `exclusive` and `reverse` attributes.
#include <type_traits>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void cumulative(KernelContext& ctx, bool product) {
  const Tensor& original = ctx.input(0);
  const Tensor x = to_compute(original);
  const Tensor& axis_t = ctx.input(1);
  ctx.check(axis_t.numel() == 1 && axis_t.rank() <= 1, [&] {
    return "axis must be a scalar (or 1-element tensor), got " + axis_t.describe();
  });
  ctx.check(x.rank() >= 1, [&] { return "input must have rank >= 1, got " + x.describe(); });
  const int64_t axis = normalize_axis(axis_t.get_i64(0), static_cast<int64_t>(x.rank()));
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.attr_int("reverse", 0) != 0;
  std::vector<bool> along(x.rank(), false);
  along[axis] = true;
  const math::AxisSplit split = math::split_axes(x.dims(), along);
  Tensor out(x.dtype(), x.dims());
  dispatch(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      ctx.unsupported(ctx.node().op_type + " does not support bool inputs");
    } else {
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double,
                                     std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
      const T* px = x.data<T>();
      T* po = out.data<T>();
      const int64_t len = static_cast<int64_t>(split.inner.size());
      for (int64_t base : split.outer) {
        Acc acc = product ? 1 : 0;
        for (int64_t step = 0; step < len; ++step) {
          const int64_t off = base + split.inner[reverse ? len - 1 - step : step];
          const Acc v = static_cast<Acc>(px[off]);
          if (!exclusive) acc = product ? acc * v : acc + v;
          po[off] = static_cast<T>(acc);
          if (exclusive) acc = product ? acc * v : acc + v;
        }
      }
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

void cum_sum(KernelContext& ctx) {
  cumulative(ctx, false);
}
void cum_prod(KernelContext& ctx) {
  cumulative(ctx, true);
}

}  // namespace

KPT_REGISTER_OP("", "CumSum", 1, cum_sum);
KPT_REGISTER_OP("", "CumProd", 1, cum_prod);

}  // namespace kpt::ops
