// Element-wise binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div.
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

template <typename Op>
void arithmetic(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::binary_same_type(ctx, ctx.input(0), ctx.input(1), ew::AnyNumeric{}, op));
}

void add(KernelContext& ctx) {
  arithmetic(ctx, []<typename T>(T x, T y) { return static_cast<T>(x + y); });
}
void sub(KernelContext& ctx) {
  arithmetic(ctx, []<typename T>(T x, T y) { return static_cast<T>(x - y); });
}
void mul(KernelContext& ctx) {
  arithmetic(ctx, []<typename T>(T x, T y) { return static_cast<T>(x * y); });
}
void div(KernelContext& ctx) {
  arithmetic(ctx, []<typename T>(T x, T y) -> T {
    if constexpr (std::is_integral_v<T>) {
      if (y == 0) fail("integer division by zero");
      // INT_MIN / -1 overflows in C++; two's complement wraps it to INT_MIN.
      if constexpr (std::is_signed_v<T>) {
        if (y == static_cast<T>(-1))
          return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));
      }
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
