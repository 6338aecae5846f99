// Slice: strided sub-tensor with numpy-style clamping of starts and ends.
#include <algorithm>
#include <limits>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void slice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> starts, ends, axes, steps;
  bool have_axes = false;
  if (ctx.opset() >= 10) {
    starts = ctx.input(1).to_i64_vector();
    ends = ctx.input(2).to_i64_vector();
    have_axes = ctx.has_input(3);
    if (have_axes) axes = ctx.input(3).to_i64_vector();
    if (ctx.has_input(4)) steps = ctx.input(4).to_i64_vector();
  } else {
    starts = ctx.attr_ints("starts");
    ends = ctx.attr_ints("ends");
    have_axes = ctx.node().has_attr("axes");
    axes = ctx.attr_ints("axes");
  }
  ctx.check(starts.size() == ends.size(), [&] {
    return "starts " + dims_to_string(starts) + " and ends " + dims_to_string(ends) +
           " differ in length";
  });
  if (!have_axes)
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  ctx.check(axes.size() == starts.size() && steps.size() == starts.size(),
            "starts, ends, axes and steps must have the same length");
  axes = normalize_axes(ctx, axes, rank);

  std::vector<int64_t> first(static_cast<size_t>(rank), 0), step(static_cast<size_t>(rank), 1);
  Dims dims = x.dims();
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    const int64_t dim = x.dims()[a];
    const int64_t s = steps[i];
    ctx.check(s != 0 && s != std::numeric_limits<int64_t>::min(),
              "step " + std::to_string(s) + " for axis " + std::to_string(a) + " is invalid");
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    int64_t count = 0;
    if (s > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      if (e > b) count = (e - b - 1) / s + 1;
    } else {
      b = std::clamp<int64_t>(b, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      if (b > e) count = (b - e - 1) / (-s) + 1;
    }
    first[a] = b;
    step[a] = s;
    dims[a] = count;
  }
  const auto in_strides = strides_of(x.dims());
  const int64_t n = element_count(dims);
  std::vector<int64_t> offsets = offset_buffer(n);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) {
    unravel(i, dims, idx);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += (first[d] + idx[d] * step[d]) * in_strides[d];
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(x, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "Slice", 1, slice);

}  // namespace kpt::ops
