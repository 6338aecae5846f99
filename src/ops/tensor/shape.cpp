// Shape and Size: facts about the input's dims as int64 tensors.
#include <algorithm>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void shape(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t start = ctx.attr_int("start", 0);
  int64_t end = ctx.attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  const int64_t n = std::max<int64_t>(0, end - start);
  Tensor out(DType::I64, {n});
  for (int64_t i = 0; i < n; ++i) out.data<int64_t>()[i] = x.dims()[static_cast<size_t>(start + i)];
  ctx.set_output(0, out);
}

void size(KernelContext& ctx) {
  ctx.set_output(0, Tensor::scalar<int64_t>(DType::I64, ctx.input(0).numel()));
}

}  // namespace

KPT_REGISTER_OP("", "Shape", 1, shape);
KPT_REGISTER_OP("", "Size", 1, size);

}  // namespace kpt::ops
