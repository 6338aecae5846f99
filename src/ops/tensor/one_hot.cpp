// OneHot: inserts a depth axis holding on_value at each index and off_value elsewhere.
#include <cmath>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void one_hot(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& depth_t = ctx.input(1);
  const Tensor& values = ctx.input(2);
  ctx.check(depth_t.numel() == 1,
            [&] { return "depth must have one element, got " + depth_t.describe(); });
  ctx.check(values.numel() == 2,
            [&] { return "values must be [off_value, on_value], got " + values.describe(); });
  ctx.check(indices.dtype() != DType::String, "indices must be numeric");
  const double depth_f = depth_t.get_f64(0);
  ctx.check(depth_f >= 1 && depth_f < 1e9,
            "depth must be positive, got " + std::to_string(depth_f));
  const int64_t depth = static_cast<int64_t>(depth_f);
  const int64_t rank = static_cast<int64_t>(indices.rank());
  int64_t axis = ctx.attr_int("axis", -1);
  ctx.check(axis >= -rank - 1 && axis <= rank, "axis " + std::to_string(axis) +
                                                   " is out of range for output rank " +
                                                   std::to_string(rank + 1));
  if (axis < 0) axis += rank + 1;
  Dims dims = indices.dims();
  dims.insert(dims.begin() + axis, depth);
  const int64_t outer = tensor_ops::product(indices.dims(), 0, static_cast<size_t>(axis));
  const int64_t inner =
      tensor_ops::product(indices.dims(), static_cast<size_t>(axis), indices.rank());
  std::vector<int64_t> offsets = tensor_ops::offset_buffer(element_count(dims));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      const double v = indices.get_f64(o * inner + j);
      if (!(std::abs(v) < 1e18)) continue;  // NaN or far outside [-depth, depth)
      int64_t k = static_cast<int64_t>(std::trunc(v));
      if (k < 0) k += depth;
      // Indices outside [-depth, depth) give a row of off_value.
      if (k >= 0 && k < depth) offsets[static_cast<size_t>((o * depth + k) * inner + j)] = 1;
    }
  ctx.set_output(0, tensor_ops::take_elements(values, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "OneHot", 9, one_hot);

}  // namespace kpt::ops
