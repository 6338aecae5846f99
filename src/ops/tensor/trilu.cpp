// Trilu: keeps the upper or lower triangle of the last two axes, zeroing the rest.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void trilu(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() >= 2, [&] { return "input must have rank >= 2, got " + x.describe(); });
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const int64_t k = ctx.has_input(1) ? ctx.input(1).get_i64(0) : 0;
  const int64_t rows = x.dims()[x.rank() - 2], cols = x.dims()[x.rank() - 1];
  std::vector<int64_t> offsets = offset_buffer(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = i % cols;
    const int64_t r = (i / cols) % rows;
    const bool keep = upper ? c - r >= k : c - r <= k;
    offsets[static_cast<size_t>(i)] = keep ? i : -1;
  }
  ctx.set_output(0, take_elements(x, x.dims(), offsets));
}

}  // namespace

KPT_REGISTER_OP("", "Trilu", 14, trilu);

}  // namespace kpt::ops
