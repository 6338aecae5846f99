// Reshape, Flatten, Squeeze and Unsqueeze: new dims over the same elements.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void reshape(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<int64_t> shape =
      ctx.opset() >= 5 ? ctx.input(1).to_i64_vector() : ctx.attr_ints("shape");
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  Dims dims(shape.size());
  int64_t infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    if (d == 0 && !allowzero) {
      ctx.check(i < x.rank(), [&] {
        return "shape entry " + std::to_string(i) + " is 0 (copy) but the input " + x.describe() +
               " has no such dimension";
      });
      d = x.dims()[i];
    }
    if (d == -1) {
      ctx.check(infer_at < 0,
                [&] { return "shape " + dims_to_string(shape) + " has more than one -1"; });
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    ctx.check(d >= 0, [&] {
      return "shape " + dims_to_string(shape) + " has invalid entry " + std::to_string(d);
    });
    dims[i] = d;
    known = checked_mul(known, d);
  }
  if (infer_at >= 0) {
    ctx.check(known != 0 && x.numel() % known == 0, [&] {
      return "cannot infer the -1 in shape " + dims_to_string(shape) + " for input " + x.describe();
    });
    dims[static_cast<size_t>(infer_at)] = x.numel() / known;
  }
  ctx.check(element_count(dims) == x.numel(), [&] {
    return "cannot reshape " + x.describe() + " to shape " + dims_to_string(dims) +
           ": element counts differ";
  });
  ctx.set_output(0, x.reshaped(dims));
}

void flatten(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.attr_int("axis", 1);
  ctx.check(axis >= -rank && axis <= rank,
            "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  const int64_t outer = product(x.dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = product(x.dims(), static_cast<size_t>(axis), x.rank());
  ctx.set_output(0, x.reshaped({outer, inner}));
}

void squeeze(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  bool present = false;
  auto axes = axes_from(ctx, "axes", 1, 13, present);
  std::vector<bool> drop(x.rank(), false);
  if (present) {
    for (int64_t a : normalize_axes(ctx, axes, static_cast<int64_t>(x.rank()))) {
      ctx.check(x.dims()[static_cast<size_t>(a)] == 1, [&] {
        return "cannot squeeze axis " + std::to_string(a) + " of " + x.describe() +
               ": its size is not 1";
      });
      drop[static_cast<size_t>(a)] = true;
    }
  } else {
    for (size_t i = 0; i < x.rank(); ++i) drop[i] = x.dims()[i] == 1;
  }
  Dims dims;
  for (size_t i = 0; i < x.rank(); ++i)
    if (!drop[i]) dims.push_back(x.dims()[i]);
  ctx.set_output(0, x.reshaped(dims));
}

void unsqueeze(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  bool present = false;
  auto axes = axes_from(ctx, "axes", 1, 13, present);
  ctx.check(present, "axes are required");
  const int64_t out_rank = static_cast<int64_t>(x.rank() + axes.size());
  axes = normalize_axes(ctx, axes, out_rank);
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) inserted[static_cast<size_t>(a)] = true;
  Dims dims;
  size_t k = 0;
  for (int64_t i = 0; i < out_rank; ++i)
    dims.push_back(inserted[static_cast<size_t>(i)] ? 1 : x.dims()[k++]);
  ctx.set_output(0, x.reshaped(dims));
}

}  // namespace

KPT_REGISTER_OP("", "Reshape", 1, reshape);
KPT_REGISTER_OP("", "Flatten", 1, flatten);
KPT_REGISTER_OP("", "Squeeze", 1, squeeze);
KPT_REGISTER_OP("", "Unsqueeze", 1, unsqueeze);

}  // namespace kpt::ops
