// Mod with broadcasting. fmod=0 takes the sign of the divisor (Python/numpy `%`); fmod=1 takes
// the sign of the dividend (C fmod).
#include <cmath>
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

void mod_kernel(KernelContext& ctx) {
  const int64_t fmod = ctx.attr_int("fmod", 0);
  ctx.check(fmod == 0 || fmod == 1, "fmod must be 0 or 1, got " + std::to_string(fmod));
  auto op = [fmod]<typename T>(T a, T b) -> T {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) fail("integer Mod by zero");
      if constexpr (std::is_signed_v<T>) {
        if (b == T(-1)) return T(0);  // avoids the INT_MIN % -1 overflow
        T r = static_cast<T>(a % b);
        if (fmod == 0 && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
        return r;
      } else {
        return static_cast<T>(a % b);
      }
    } else {
      T r = std::fmod(a, b);
      if (fmod == 0 && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
  };
  ctx.set_output(0, ew::binary_same_type(ctx, ctx.input(0), ctx.input(1), ew::AnyNumeric{}, op));
}

}  // namespace

KPT_REGISTER_OP("", "Mod", 10, mod_kernel);

}  // namespace kpt::ops
