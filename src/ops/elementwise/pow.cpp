// Pow with broadcasting; the exponent may have a different type than the base (opset 12+) and
// the result has the base's type.
#include <cmath>
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

// Integer power by squaring, wrapping on overflow like numpy's integer power.
template <typename B>
B int_pow(B base, int64_t e) {
  using U = std::make_unsigned_t<B>;
  U result = 1;
  U b = static_cast<U>(base);
  while (e > 0) {
    if (e & 1) result = static_cast<U>(result * b);
    b = static_cast<U>(b * b);
    e >>= 1;
  }
  return static_cast<B>(result);
}

void pow_kernel(KernelContext& ctx) {
  const Tensor& base_in = ctx.input(0);
  const Tensor base = to_compute(base_in);
  const Tensor expo = to_compute(ew::legacy_broadcast_rhs(ctx, base_in, ctx.input(1)));
  Tensor out(base.dtype(), broadcast_dims(base.dims(), expo.dims()));
  ew::dispatch_numeric(ctx, base.dtype(), [&]<typename B>() {
    ew::dispatch_numeric(ctx, expo.dtype(), [&]<typename E>() {
      ew::broadcast_loop<B, E, B>(base, expo, out, [](B b, E e) -> B {
        if constexpr (std::is_integral_v<B> && std::is_integral_v<E>) {
          if constexpr (std::is_unsigned_v<E>) {
            return int_pow<B>(b, static_cast<int64_t>(e));
          } else if (e >= 0) {
            return int_pow<B>(b, static_cast<int64_t>(e));
          }
        }
        return static_cast<B>(std::pow(static_cast<double>(b), static_cast<double>(e)));
      });
    });
  });
  ctx.set_output(0, from_compute(out, base_in.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "Pow", 1, pow_kernel);

}  // namespace kpt::ops
