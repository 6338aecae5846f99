// Compress: keeps the slices along an axis (or the flattened elements) where condition holds.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void compress(KernelContext& ctx) {
  Tensor x = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  ctx.check(cond.rank() == 1, [&] { return "condition must be 1-D, got " + cond.describe(); });
  size_t axis = 0;
  if (ctx.node().has_attr("axis"))
    axis = static_cast<size_t>(
        normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(x.rank())));
  else
    x = x.reshaped({x.numel()});
  const int64_t dim = x.dims()[axis];
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (cond.get_i64(i) == 0) continue;
    ctx.check(i < dim, [&] {
      return "condition " + cond.describe() + " selects index " + std::to_string(i) +
             " beyond the axis size " + std::to_string(dim);
    });
    keep.push_back(i);
  }
  Dims dims = x.dims();
  dims[axis] = static_cast<int64_t>(keep.size());
  const int64_t outer = product(x.dims(), 0, axis);
  const int64_t inner = product(x.dims(), axis + 1, x.rank());
  Tensor out(x.dtype(), dims);
  const int64_t n = static_cast<int64_t>(keep.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      copy_elements(x, (o * dim + keep[static_cast<size_t>(j)]) * inner, out, (o * n + j) * inner,
                    inner);
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Compress", 9, compress);

}  // namespace kpt::ops
