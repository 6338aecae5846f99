// Transpose: permutes the axes.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const size_t rank = x.rank();
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (!ctx.node().has_attr("perm")) {
    perm.resize(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  }
  ctx.check(perm.size() == rank,
            "perm " + dims_to_string(perm) + " does not match input " + x.describe());
  perm = normalize_axes(ctx, perm, static_cast<int64_t>(rank));
  Dims dims(rank);
  for (size_t i = 0; i < rank; ++i) dims[i] = x.dims()[static_cast<size_t>(perm[i])];
  const auto in_strides = strides_of(x.dims());
  std::vector<int64_t> offsets = offset_buffer(x.numel());
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < x.numel(); ++i) {
    unravel(i, dims, idx);
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * in_strides[static_cast<size_t>(perm[d])];
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(x, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "Transpose", 1, transpose);

}  // namespace kpt::ops
