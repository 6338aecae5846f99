// Softmax, LogSoftmax and Hardmax. Before opset 13 the input is viewed as a 2-D matrix
// [prod(dims[:axis]), prod(dims[axis:])] (default axis 1); from 13 the op works along one
// axis (default -1).
#include <cmath>
#include <limits>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

enum class Kind { Softmax, LogSoftmax, Hardmax };

void softmax_family(KernelContext& ctx, Kind kind) {
  const Tensor& original = ctx.input(0);
  const Tensor x = to_compute(original);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<bool> reduced(x.rank(), false);
  if (ctx.opset() < 13) {
    // Rank 0 is allowed as the degenerate 1x1 case.
    const int64_t axis = rank == 0 ? 0 : normalize_axis(ctx.attr_int("axis", 1), rank);
    for (int64_t d = axis; d < rank; ++d) reduced[d] = true;
  } else {
    ctx.check(rank > 0, [&] { return "input must have rank >= 1, got " + x.describe(); });
    reduced[normalize_axis(ctx.attr_int("axis", -1), rank)] = true;
  }
  const math::AxisSplit split = math::split_axes(x.dims(), reduced);
  Tensor out(x.dtype(), x.dims());
  dispatch_float(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t base : split.outer) {
      if (split.inner.empty()) continue;
      double m = -std::numeric_limits<double>::infinity();
      size_t arg = 0;
      bool any_nan = false;
      for (size_t i = 0; i < split.inner.size(); ++i) {
        const double v = px[base + split.inner[i]];
        if (std::isnan(v)) any_nan = true;
        // The first NaN is the maximum, as numpy's argmax has it.
        if (i == 0 || v > m || (std::isnan(v) && !std::isnan(m))) {
          m = v;
          arg = i;
        }
      }
      if (kind == Kind::Hardmax) {
        for (size_t i = 0; i < split.inner.size(); ++i) po[base + split.inner[i]] = T(i == arg);
        continue;
      }
      if (any_nan) {
        for (int64_t r : split.inner) po[base + r] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      double sum = 0;
      for (int64_t r : split.inner) sum += std::exp(static_cast<double>(px[base + r]) - m);
      for (int64_t r : split.inner) {
        const double shifted = static_cast<double>(px[base + r]) - m;
        po[base + r] = static_cast<T>(kind == Kind::Softmax ? std::exp(shifted) / sum
                                                            : shifted - std::log(sum));
      }
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

void softmax(KernelContext& ctx) {
  softmax_family(ctx, Kind::Softmax);
}
void log_softmax(KernelContext& ctx) {
  softmax_family(ctx, Kind::LogSoftmax);
}
void hardmax(KernelContext& ctx) {
  softmax_family(ctx, Kind::Hardmax);
}

}  // namespace

KPT_REGISTER_OP("", "Softmax", 1, softmax);
KPT_REGISTER_OP("", "LogSoftmax", 1, log_softmax);
KPT_REGISTER_OP("", "Hardmax", 1, hardmax);

}  // namespace kpt::ops
