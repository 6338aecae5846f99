// SplitToSequence: cuts a tensor along an axis into a sequence of pieces, by equal chunks of a
// scalar size, by a list of lengths, or into single slices (squeezed unless keepdims).
#include "ops/control/tensor_pieces.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void split_to_sequence(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() >= 1, [&] { return "input must have rank >= 1, got " + x.describe(); });
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(x.rank()));
  const int64_t n = x.dims()[static_cast<size_t>(axis)];
  std::vector<Tensor> items;
  if (!ctx.has_input(1)) {
    const bool keep = ctx.attr_int("keepdims", 1) != 0;
    for (int64_t i = 0; i < n; ++i)
      items.push_back(control::slice_axis(x, static_cast<size_t>(axis), i, 1, keep));
  } else {
    const Tensor& split = ctx.input(1);
    ctx.check(split.dtype() == DType::I32 || split.dtype() == DType::I64,
              [&] { return "split must be int32 or int64, got " + split.describe(); });
    std::vector<int64_t> lens;
    if (split.rank() == 0) {
      const int64_t chunk = split.get_i64(0);
      ctx.check(chunk > 0, "split size must be positive, got " + std::to_string(chunk));
      for (int64_t at = 0; at < n; at += chunk) lens.push_back(std::min(chunk, n - at));
    } else {
      ctx.check(split.rank() == 1,
                [&] { return "split must be a scalar or 1-D, got " + split.describe(); });
      lens = split.to_i64_vector();
      int64_t sum = 0;
      for (auto l : lens) {
        ctx.check(l >= 0, "split lengths must be non-negative");
        sum += l;
      }
      ctx.check(sum == n, "split lengths sum to " + std::to_string(sum) + " but axis " +
                              std::to_string(axis) + " has " + std::to_string(n));
    }
    int64_t at = 0;
    for (auto l : lens) {
      items.push_back(control::slice_axis(x, static_cast<size_t>(axis), at, l, true));
      at += l;
    }
  }
  ctx.set_output_value(0, Value::of_sequence(std::move(items), x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "SplitToSequence", 1, split_to_sequence);

}  // namespace kpt::ops
