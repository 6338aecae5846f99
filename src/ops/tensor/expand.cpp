// Expand (broadcast to a shape) and Tile (repeat along each axis).
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void expand(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Dims shape = ctx.input(1).to_i64_vector();
  const Dims dims = broadcast_dims(x.dims(), shape);
  check_output_elements(element_count(dims));
  ctx.set_output(0, take_elements(x, dims, broadcast_offsets(dims, x.dims())));
}

void tile(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> repeats;
  if (ctx.opset() >= 6) {
    repeats = ctx.input(1).to_i64_vector();
  } else {
    // Tile-1: a scalar count of tiles along one axis.
    repeats.assign(x.rank(), 1);
    const int64_t axis = normalize_axis(ctx.input(2).get_i64(0), static_cast<int64_t>(x.rank()));
    repeats[static_cast<size_t>(axis)] = ctx.input(1).get_i64(0);
  }
  ctx.check(repeats.size() == x.rank(), [&] {
    return "repeats " + dims_to_string(repeats) + " must have one entry per axis of " +
           x.describe();
  });
  Dims dims = x.dims();
  for (size_t d = 0; d < dims.size(); ++d) {
    ctx.check(repeats[d] >= 0,
              [&] { return "repeats " + dims_to_string(repeats) + " must be non-negative"; });
    dims[d] = checked_mul(dims[d], repeats[d]);
  }
  const int64_t n = element_count(dims);
  const auto strides = strides_of(x.dims());
  std::vector<int64_t> offsets = offset_buffer(n);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) {
    unravel(i, dims, idx);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += (idx[d] % x.dims()[d]) * strides[d];
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(x, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "Expand", 1, expand);
KPT_REGISTER_OP("", "Tile", 1, tile);

}  // namespace kpt::ops
