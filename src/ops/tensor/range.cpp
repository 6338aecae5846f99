// Range: start, start + delta, ... up to (excluding) limit.
#include <cmath>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void range(KernelContext& ctx) {
  const Tensor& start = ctx.input(0);
  const Tensor& limit = ctx.input(1);
  const Tensor& delta = ctx.input(2);
  ctx.check(start.numel() == 1 && limit.numel() == 1 && delta.numel() == 1,
            "start, limit and delta must be scalars");
  ctx.check(start.dtype() == limit.dtype() && start.dtype() == delta.dtype(),
            "start, limit and delta must have the same element type");
  const DType t = start.dtype();
  Tensor out;
  if (is_float(t)) {
    const double s = start.get_f64(0), l = limit.get_f64(0), d = delta.get_f64(0);
    ctx.check(d != 0, "delta is 0");
    const double count = std::max(0.0, std::ceil((l - s) / d));
    ctx.check(count < 1e10, "Range would produce " + std::to_string(count) + " elements");
    const int64_t n = static_cast<int64_t>(count);
    Tensor wide(DType::F64, {n});
    for (int64_t i = 0; i < n; ++i) wide.data<double>()[i] = s + static_cast<double>(i) * d;
    if (t == DType::F32) {
      // Accumulate in the input's precision, as the reference does.
      Tensor f(DType::F32, {n});
      const float fs = static_cast<float>(s), fd = static_cast<float>(d);
      for (int64_t i = 0; i < n; ++i) f.data<float>()[i] = fs + static_cast<float>(i) * fd;
      out = f;
    } else {
      out = cast_tensor(wide, t);
    }
  } else {
    const int64_t s = start.get_i64(0), l = limit.get_i64(0), d = delta.get_i64(0);
    ctx.check(d != 0, "delta is 0");
    const double approx =
        (static_cast<double>(l) - static_cast<double>(s)) / static_cast<double>(d);
    ctx.check(approx < 8e9, "Range would produce about " + std::to_string(approx) + " elements");
    int64_t n = 0;
    if ((d > 0 && l > s) || (d < 0 && l < s)) n = (l - s + d + (d > 0 ? -1 : 1)) / d;
    ctx.check(n < (int64_t{1} << 33), "Range would produce " + std::to_string(n) + " elements");
    Tensor wide(DType::I64, {n});
    for (int64_t i = 0; i < n; ++i) wide.data<int64_t>()[i] = s + i * d;
    out = cast_tensor(wide, t);
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Range", 11, range);

}  // namespace kpt::ops
