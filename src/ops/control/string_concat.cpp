// StringConcat: element-wise concatenation of two string tensors with numpy broadcasting.
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void string_concat(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ctx.check(a.dtype() == DType::String && b.dtype() == DType::String, [&] {
    return "inputs must be string tensors, got " + a.describe() + " and " + b.describe();
  });
  const Dims od = broadcast_dims(a.dims(), b.dims());
  Tensor out(DType::String, od);
  const auto oa = broadcast_offsets(od, a.dims());
  const auto ob = broadcast_offsets(od, b.dims());
  auto& dst = out.strings();
  for (int64_t i = 0; i < out.numel(); ++i) {
    const auto k = static_cast<size_t>(i);
    dst[k] = a.strings()[static_cast<size_t>(oa[k])] + b.strings()[static_cast<size_t>(ob[k])];
  }
  ctx.set_output(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("", "StringConcat", 1, string_concat);

}  // namespace kpt::ops
