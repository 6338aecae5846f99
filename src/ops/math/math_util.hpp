#pragma once
// Helpers shared by the math kernels: splitting a tensor into kept and reduced axes.
#include <cstdint>
#include <vector>

#include "kpt/tensor.hpp"
#include "ops/op_util.hpp"

namespace kpt::ops::math {

// Element offsets of a row-major tensor split into "outer" positions (the kept axes, in order)
// and "inner" positions (the reduced axes, in order): element (o, r) is at outer[o] + inner[r].
struct AxisSplit {
  std::vector<int64_t> outer;
  std::vector<int64_t> inner;
};

inline AxisSplit split_axes(const Dims& dims, const std::vector<bool>& reduced) {
  const std::vector<int64_t> strides = strides_of(dims);
  auto offsets_of = [&](bool want_reduced) {
    std::vector<int64_t> offsets{0};
    for (size_t d = 0; d < dims.size(); ++d) {
      if (reduced[d] != want_reduced) continue;
      std::vector<int64_t> next;
      next.reserve(offsets.size() * static_cast<size_t>(dims[d]));
      for (int64_t base : offsets)
        for (int64_t i = 0; i < dims[d]; ++i) next.push_back(base + i * strides[d]);
      offsets = std::move(next);
    }
    return offsets;
  };
  return AxisSplit{offsets_of(false), offsets_of(true)};
}

// Product of dims[begin, end).
inline int64_t dims_product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

}  // namespace kpt::ops::math
