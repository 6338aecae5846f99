// Gather, GatherElements and GatherND: reads elements at index positions.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void check_indices_type(const KernelContext& ctx, const Tensor& indices) {
  ctx.check(indices.dtype() == DType::I64 || indices.dtype() == DType::I32,
            [&] { return "indices must be int32 or int64, got " + indices.describe(); });
}

void gather(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  check_indices_type(ctx, indices);
  const int64_t rank = static_cast<int64_t>(data.rank());
  ctx.check(rank >= 1, [&] { return "data must have rank >= 1, got " + data.describe(); });
  const size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), rank));
  const int64_t dim = data.dims()[axis];
  Dims dims(data.dims().begin(), data.dims().begin() + static_cast<int64_t>(axis));
  dims.insert(dims.end(), indices.dims().begin(), indices.dims().end());
  dims.insert(dims.end(), data.dims().begin() + static_cast<int64_t>(axis) + 1, data.dims().end());
  const int64_t outer = product(data.dims(), 0, axis);
  const int64_t inner = product(data.dims(), axis + 1, data.rank());
  const int64_t n_idx = indices.numel();
  Tensor out(data.dtype(), dims);
  for (int64_t j = 0; j < n_idx; ++j) {
    const int64_t k = resolve_index(ctx, indices.get_i64(j), dim, "Gather");
    for (int64_t o = 0; o < outer; ++o)
      copy_elements(data, (o * dim + k) * inner, out, (o * n_idx + j) * inner, inner);
  }
  ctx.set_output(0, out);
}

void gather_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  check_indices_type(ctx, indices);
  const int64_t rank = static_cast<int64_t>(data.rank());
  ctx.check(rank >= 1 && indices.rank() == data.rank(), [&] {
    return "data " + data.describe() + " and indices " + indices.describe() +
           " must have the same rank >= 1";
  });
  const size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), rank));
  const auto strides = strides_of(data.dims());
  std::vector<int64_t> offsets = offset_buffer(indices.numel());
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < indices.numel(); ++i) {
    unravel(i, indices.dims(), idx);
    idx[axis] = resolve_index(ctx, indices.get_i64(i), data.dims()[axis], "GatherElements");
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) {
      ctx.check(d == axis || idx[d] < data.dims()[d], [&] {
        return "indices " + indices.describe() + " exceed data " + data.describe() + " on axis " +
               std::to_string(d);
      });
      off += idx[d] * strides[d];
    }
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(data, indices.dims(), offsets));
}

void gather_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  ctx.check(indices.dtype() == DType::I64,
            [&] { return "indices must be int64, got " + indices.describe(); });
  const size_t b = static_cast<size_t>(ctx.attr_int("batch_dims", 0));
  ctx.check(indices.rank() >= 1 && data.rank() >= 1 && b < indices.rank() && b < data.rank(), [&] {
    return "batch_dims " + std::to_string(b) + " must be less than the ranks of data " +
           data.describe() + " and indices " + indices.describe();
  });
  for (size_t d = 0; d < b; ++d)
    ctx.check(indices.dims()[d] == data.dims()[d], [&] {
      return "batch dimension " + std::to_string(d) + " differs between data " + data.describe() +
             " and indices " + indices.describe();
    });
  const size_t k = static_cast<size_t>(indices.dims().back());
  ctx.check(k >= 1 && b + k <= data.rank(), [&] {
    return "the last dimension of indices " + indices.describe() +
           " must be in [1, rank(data) - batch_dims]";
  });
  Dims dims(indices.dims().begin(), indices.dims().end() - 1);
  dims.insert(dims.end(), data.dims().begin() + static_cast<int64_t>(b + k), data.dims().end());
  const int64_t slice = product(data.dims(), b + k, data.rank());
  const int64_t tuples = product(indices.dims(), 0, indices.rank() - 1);
  const int64_t per_batch = product(indices.dims(), b, indices.rank() - 1);
  const auto strides = strides_of(data.dims());
  Tensor out(data.dtype(), dims);
  for (int64_t t = 0; t < tuples; ++t) {
    const int64_t batch = per_batch == 0 ? 0 : t / per_batch;
    int64_t off = batch * (b == 0 ? 0 : strides[b - 1]);
    for (size_t j = 0; j < k; ++j) {
      const int64_t v = indices.get_i64(t * static_cast<int64_t>(k) + static_cast<int64_t>(j));
      off += resolve_index(ctx, v, data.dims()[b + j], "GatherND") * strides[b + j];
    }
    copy_elements(data, off, out, t * slice, slice);
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Gather", 1, gather);
KPT_REGISTER_OP("", "GatherElements", 1, gather_elements);
KPT_REGISTER_OP("", "GatherND", 1, gather_nd);

}  // namespace kpt::ops
