#pragma once
// Random engines for the generator ops: seeded from the `seed` attribute when present (the
// same seed gives the same values in this build), otherwise from std::random_device. Values
// cannot match other runtimes, which use their own generators.
#include <bit>
#include <cstdint>
#include <random>

#include "ops/registry.hpp"

namespace kpt::ops::control {

inline std::mt19937_64 make_engine(const KernelContext& ctx) {
  if (ctx.node().has_attr("seed")) {
    const float seed = ctx.attr_float("seed", 0);
    return std::mt19937_64(static_cast<uint64_t>(std::bit_cast<uint32_t>(seed)));
  }
  std::random_device rd;
  return std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

// The element type an output may take from the `dtype` attribute, else `dflt`.
inline DType output_dtype(const KernelContext& ctx, DType dflt) {
  if (!ctx.node().has_attr("dtype")) return dflt;
  const int64_t code = ctx.attr_int("dtype", 0);
  ctx.check(is_valid_dtype(static_cast<int32_t>(code)) && code != 0,
            "dtype " + std::to_string(code) + " is not a valid element type");
  return static_cast<DType>(code);
}

}  // namespace kpt::ops::control
