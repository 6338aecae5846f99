// Broadcast logical ops on bool (And, Or, Xor), bitwise ops on integers (BitwiseAnd/Or/Xor)
// and BitShift on unsigned integers.
#include <string>
#include <type_traits>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

template <typename Op>
void logical(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::binary_to_bool(ctx, ctx.input(0), ctx.input(1), ew::OnlyBool{}, op));
}
template <typename Op>
void bitwise(KernelContext& ctx, Op op) {
  ctx.set_output(0, ew::binary_same_type(ctx, ctx.input(0), ctx.input(1), ew::AnyInteger{}, op));
}

void and_kernel(KernelContext& ctx) {
  logical(ctx, []<typename T>(T x, T y) { return x && y; });
}
void or_kernel(KernelContext& ctx) {
  logical(ctx, []<typename T>(T x, T y) { return x || y; });
}
void xor_kernel(KernelContext& ctx) {
  logical(ctx, []<typename T>(T x, T y) { return x != y; });
}
void bitwise_and(KernelContext& ctx) {
  bitwise(ctx, []<typename T>(T x, T y) { return static_cast<T>(x & y); });
}
void bitwise_or(KernelContext& ctx) {
  bitwise(ctx, []<typename T>(T x, T y) { return static_cast<T>(x | y); });
}
void bitwise_xor(KernelContext& ctx) {
  bitwise(ctx, []<typename T>(T x, T y) { return static_cast<T>(x ^ y); });
}

void bit_shift(KernelContext& ctx) {
  const std::string direction = ctx.attr_string("direction", "");
  ctx.check(direction == "LEFT" || direction == "RIGHT",
            "direction must be 'LEFT' or 'RIGHT', got '" + direction + "'");
  const bool left = direction == "LEFT";
  const DType t = ctx.input(0).dtype();
  ctx.check(is_unsigned_integer(t),
            "BitShift expects unsigned integer inputs, got " + std::string(dtype_name(t)));
  // Shifting by the bit width or more yields 0 (C++ leaves it undefined).
  bitwise(ctx, [left]<typename T>(T x, T s) -> T {
    if constexpr (std::is_unsigned_v<T>) {
      if (static_cast<uint64_t>(s) >= sizeof(T) * 8) return T(0);
      return left ? static_cast<T>(x << s) : static_cast<T>(x >> s);
    } else {
      return x;
    }
  });
}

}  // namespace

KPT_REGISTER_OP("", "And", 1, and_kernel);
KPT_REGISTER_OP("", "Or", 1, or_kernel);
KPT_REGISTER_OP("", "Xor", 1, xor_kernel);
KPT_REGISTER_OP("", "BitwiseAnd", 18, bitwise_and);
KPT_REGISTER_OP("", "BitwiseOr", 18, bitwise_or);
KPT_REGISTER_OP("", "BitwiseXor", 18, bitwise_xor);
KPT_REGISTER_OP("", "BitShift", 11, bit_shift);

}  // namespace kpt::ops
