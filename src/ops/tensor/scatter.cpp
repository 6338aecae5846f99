// ScatterND, ScatterElements and the deprecated Scatter: a copy of data with elements replaced
// (or combined by a reduction) at index positions.
#include <algorithm>
#include <utility>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

// (destination offset in data, source offset in updates), applied in order.
using Writes = std::vector<std::pair<int64_t, int64_t>>;

Tensor apply_writes(const KernelContext& ctx, const Tensor& data, const Tensor& updates,
                    const Writes& writes, const std::string& reduction) {
  ctx.check(data.dtype() == updates.dtype(), [&] {
    return "data " + data.describe() + " and updates " + updates.describe() +
           " differ in element type";
  });
  if (reduction == "none") {
    Tensor out = data.clone();
    for (auto [d, s] : writes) copy_element(updates, s, out, d);
    return out;
  }
  if (reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    ctx.unsupported("reduction '" + reduction + "' is not supported");
  Tensor out = to_compute(data);
  out = out.dtype() == data.dtype() ? data.clone() : out;
  const Tensor upd = to_compute(updates);
  dispatch(out.dtype(), ctx.node().op_type, [&]<typename T>() {
    T* po = out.data<T>();
    const T* pu = upd.data<T>();
    for (auto [d, s] : writes) {
      const T u = pu[s];
      T& o = po[d];
      if (reduction == "add")
        o = static_cast<T>(o + u);
      else if (reduction == "mul")
        o = static_cast<T>(o * u);
      else if (reduction == "max")
        o = std::max(o, u);
      else
        o = std::min(o, u);
    }
  });
  return from_compute(out, data.dtype());
}

std::string reduction_of(const KernelContext& ctx) {
  return ctx.attr_string("reduction", "none");
}

void scatter_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  const int64_t rank = static_cast<int64_t>(data.rank());
  ctx.check(rank >= 1 && indices.rank() == data.rank() && updates.dims() == indices.dims(), [&] {
    return "data " + data.describe() + ", indices " + indices.describe() + " and updates " +
           updates.describe() + " must have the same rank; indices and updates the same shape";
  });
  ctx.check(indices.dtype() == DType::I64 || indices.dtype() == DType::I32,
            [&] { return "indices must be int32 or int64, got " + indices.describe(); });
  const size_t axis = static_cast<size_t>(normalize_axis(ctx.attr_int("axis", 0), rank));
  const auto strides = strides_of(data.dims());
  Writes writes;
  writes.reserve(static_cast<size_t>(indices.numel()));
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < indices.numel(); ++i) {
    unravel(i, indices.dims(), idx);
    idx[axis] = resolve_index(ctx, indices.get_i64(i), data.dims()[axis], ctx.node().op_type);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) {
      ctx.check(idx[d] < data.dims()[d], [&] {
        return "indices " + indices.describe() + " exceed data " + data.describe() + " on axis " +
               std::to_string(d);
      });
      off += idx[d] * strides[d];
    }
    writes.emplace_back(off, i);
  }
  ctx.set_output(0, apply_writes(ctx, data, updates, writes, reduction_of(ctx)));
}

void scatter_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  ctx.check(indices.dtype() == DType::I64,
            [&] { return "indices must be int64, got " + indices.describe(); });
  ctx.check(indices.rank() >= 1,
            [&] { return "indices must have rank >= 1, got " + indices.describe(); });
  const size_t k = static_cast<size_t>(indices.dims().back());
  ctx.check(k <= data.rank(), [&] {
    return "the last dimension of indices " + indices.describe() + " exceeds the rank of data " +
           data.describe();
  });
  Dims expect(indices.dims().begin(), indices.dims().end() - 1);
  expect.insert(expect.end(), data.dims().begin() + static_cast<int64_t>(k), data.dims().end());
  ctx.check(updates.dims() == expect, [&] {
    return "updates " + updates.describe() + " must have shape " + dims_to_string(expect);
  });
  const int64_t slice = product(data.dims(), k, data.rank());
  const int64_t tuples = product(indices.dims(), 0, indices.rank() - 1);
  const auto strides = strides_of(data.dims());
  Writes writes;
  writes.reserve(static_cast<size_t>(updates.numel()));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (size_t j = 0; j < k; ++j) {
      const int64_t v = indices.get_i64(t * static_cast<int64_t>(k) + static_cast<int64_t>(j));
      off += resolve_index(ctx, v, data.dims()[j], "ScatterND") * strides[j];
    }
    for (int64_t e = 0; e < slice; ++e) writes.emplace_back(off + e, t * slice + e);
  }
  ctx.set_output(0, apply_writes(ctx, data, updates, writes, reduction_of(ctx)));
}

}  // namespace

KPT_REGISTER_OP("", "ScatterElements", 1, scatter_elements);
KPT_REGISTER_OP("", "Scatter", 1, scatter_elements);
KPT_REGISTER_OP("", "ScatterND", 1, scatter_nd);

}  // namespace kpt::ops
