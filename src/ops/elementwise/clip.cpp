// Clip: bounds are attributes before opset 11 and optional scalar inputs from opset 11.
// When min > max every element becomes max (min is applied first, then max).
#include <limits>
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

// The single value of a bound input of X's compute type.
template <typename T>
T bound_value(const KernelContext& ctx, size_t i, DType x_dtype, const char* what) {
  const Tensor& t = ctx.input(i);
  ctx.check(t.numel() == 1 && t.rank() <= 1,
            [&] { return std::string(what) + " must be a scalar, got " + t.describe(); });
  ctx.check(t.dtype() == x_dtype, [&] {
    return std::string(what) + " must have the input's type " + std::string(dtype_name(x_dtype)) +
           ", got " + t.describe();
  });
  const Tensor c = to_compute(t);
  return c.data<T>()[0];
}

void clip_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor x = to_compute(in);
  Tensor out(x.dtype(), x.dims());
  ew::dispatch_numeric(ctx, x.dtype(), [&]<typename T>() {
    T lo = std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::max();
    if (ctx.opset() < 11) {
      lo = static_cast<T>(ctx.attr_float("min", -std::numeric_limits<float>::max()));
      hi = static_cast<T>(ctx.attr_float("max", std::numeric_limits<float>::max()));
      if constexpr (std::is_floating_point_v<T>) {
        if (!ctx.node().has_attr("min")) lo = -std::numeric_limits<T>::infinity();
        if (!ctx.node().has_attr("max")) hi = std::numeric_limits<T>::infinity();
      }
    } else {
      if (ctx.has_input(1)) lo = bound_value<T>(ctx, 1, in.dtype(), "min");
      if (ctx.has_input(2)) hi = bound_value<T>(ctx, 2, in.dtype(), "max");
    }
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      T v = px[i];
      if (v < lo) v = lo;
      if (v > hi) v = hi;
      po[i] = v;
    }
  });
  ctx.set_output(0, from_compute(out, in.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "Clip", 1, clip_kernel);

}  // namespace kpt::ops
