// ReverseSequence: reverses the first sequence_lens[b] steps of each batch entry.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void reverse_sequence(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& lens = ctx.input(1);
  ctx.check(x.rank() >= 2, [&] { return "input must have rank >= 2, got " + x.describe(); });
  const int64_t rank = static_cast<int64_t>(x.rank());
  const size_t batch_axis =
      static_cast<size_t>(normalize_axis(ctx.attr_int("batch_axis", 1), rank));
  const size_t time_axis = static_cast<size_t>(normalize_axis(ctx.attr_int("time_axis", 0), rank));
  ctx.check(batch_axis != time_axis, "batch_axis and time_axis must differ");
  ctx.check(batch_axis <= 1 && time_axis <= 1, "batch_axis and time_axis must be 0 or 1");
  const int64_t batch = x.dims()[batch_axis], steps = x.dims()[time_axis];
  ctx.check(lens.rank() == 1 && lens.numel() == batch, [&] {
    return "sequence_lens " + lens.describe() + " must have one entry per batch (" +
           std::to_string(batch) + ")";
  });
  for (int64_t b = 0; b < batch; ++b)
    ctx.check(lens.get_i64(b) >= 0 && lens.get_i64(b) <= steps,
              "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lens.get_i64(b)) +
                  " is outside [0, " + std::to_string(steps) + "]");
  const auto strides = strides_of(x.dims());
  std::vector<int64_t> offsets = tensor_ops::offset_buffer(x.numel());
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < x.numel(); ++i) {
    tensor_ops::unravel(i, x.dims(), idx);
    const int64_t len = lens.get_i64(idx[batch_axis]);
    int64_t& t = idx[time_axis];
    if (t < len) t = len - 1 - t;
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides[d];
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, tensor_ops::take_elements(x, x.dims(), offsets));
}

}  // namespace

KPT_REGISTER_OP("", "ReverseSequence", 10, reverse_sequence);

}  // namespace kpt::ops
