// Concat: joins tensors along one axis.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void concat(KernelContext& ctx) {
  ctx.check(ctx.num_inputs() >= 1, "at least one input is required");
  const Tensor& first = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(first.rank());
  ctx.check(rank >= 1, [&] { return "inputs must have rank >= 1, got " + first.describe(); });
  // The axis attribute was optional (default 1) before opset 4.
  if (ctx.opset() >= 4) ctx.check(ctx.node().has_attr("axis"), "attribute axis is required");
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 1), rank);
  Dims dims = first.dims();
  dims[static_cast<size_t>(axis)] = 0;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    const Tensor& t = ctx.input(k);
    ctx.check(t.dtype() == first.dtype() && static_cast<int64_t>(t.rank()) == rank, [&] {
      return "input " + std::to_string(k) + " " + t.describe() + " does not match input 0 " +
             first.describe();
    });
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis)
        ctx.check(t.dims()[static_cast<size_t>(d)] == first.dims()[static_cast<size_t>(d)], [&] {
          return "input " + std::to_string(k) + " " + t.describe() + " differs from input 0 " +
                 first.describe() + " outside axis " + std::to_string(axis);
        });
    dims[static_cast<size_t>(axis)] += t.dims()[static_cast<size_t>(axis)];
  }
  Tensor out(first.dtype(), dims);
  const int64_t outer = product(dims, 0, static_cast<size_t>(axis));
  const int64_t out_row = product(dims, static_cast<size_t>(axis), dims.size());
  int64_t column = 0;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    const Tensor& t = ctx.input(k);
    const int64_t row = product(t.dims(), static_cast<size_t>(axis), t.rank());
    for (int64_t o = 0; o < outer; ++o) copy_elements(t, o * row, out, o * out_row + column, row);
    column += row;
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Concat", 1, concat);

}  // namespace kpt::ops
