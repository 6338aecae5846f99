// Where: three-way broadcast selection between X and Y by a bool condition; any element type.
#include <cstring>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

void where_kernel(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  ctx.check(cond.dtype() == DType::Bool,
            [&] { return "condition must be bool, got " + cond.describe(); });
  ew::check_same_dtype(ctx, x, y);
  const Dims dims = broadcast_all({cond.dims(), x.dims(), y.dims()});
  Tensor out(x.dtype(), dims);
  const auto oc = broadcast_offsets(dims, cond.dims());
  const auto ox = broadcast_offsets(dims, x.dims());
  const auto oy = broadcast_offsets(dims, y.dims());
  const bool* pc = cond.data<bool>();
  if (x.dtype() == DType::String) {
    auto& dst = out.strings();
    for (size_t i = 0; i < oc.size(); ++i) {
      dst[i] = pc[oc[i]] ? x.strings()[static_cast<size_t>(ox[i])]
                         : y.strings()[static_cast<size_t>(oy[i])];
    }
  } else {
    // Elements are copied as bytes, so every fixed-size type works the same way.
    const size_t es = dtype_size(x.dtype());
    const auto* px = static_cast<const uint8_t*>(x.raw());
    const auto* py = static_cast<const uint8_t*>(y.raw());
    auto* po = static_cast<uint8_t*>(out.raw());
    for (size_t i = 0; i < oc.size(); ++i) {
      const uint8_t* src =
          pc[oc[i]] ? px + static_cast<size_t>(ox[i]) * es : py + static_cast<size_t>(oy[i]) * es;
      std::memcpy(po + i * es, src, es);
    }
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Where", 9, where_kernel);

}  // namespace kpt::ops
