// ArgMax and ArgMin: the index of the extreme element along one axis.
#include <cmath>
#include <type_traits>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void arg_reduce(KernelContext& ctx, bool is_max) {
  const Tensor x = to_compute(ctx.input(0));
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 0), rank);
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  const bool last = ctx.opset() >= 12 && ctx.attr_int("select_last_index", 0) != 0;
  ctx.check(x.dims()[axis] > 0, [&] {
    return "cannot take " + ctx.node().op_type + " over empty axis " + std::to_string(axis) +
           " of " + x.describe();
  });

  Dims out_dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis)
      out_dims.push_back(x.dims()[d]);
    else if (keepdims)
      out_dims.push_back(1);
  }
  std::vector<bool> reduced(x.rank(), false);
  reduced[axis] = true;
  const math::AxisSplit split = math::split_axes(x.dims(), reduced);

  Tensor out(DType::I64, out_dims);
  int64_t* po = out.data<int64_t>();
  dispatch(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    const T* px = x.data<T>();
    for (size_t o = 0; o < split.outer.size(); ++o) {
      const int64_t base = split.outer[o];
      int64_t best = 0;
      for (size_t i = 1; i < split.inner.size(); ++i) {
        const T v = px[base + split.inner[i]];
        const T b = px[base + split.inner[best]];
        bool take;
        if constexpr (std::is_floating_point_v<T>) {
          // NaN wins, as in numpy: the first NaN (or the last with select_last_index).
          if (std::isnan(b))
            take = last && std::isnan(v);
          else if (std::isnan(v))
            take = true;
          else
            take = is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b));
        } else {
          take = is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b));
        }
        if (take) best = static_cast<int64_t>(i);
      }
      po[o] = best;
    }
  });
  ctx.set_output(0, out);
}

void arg_max(KernelContext& ctx) {
  arg_reduce(ctx, true);
}
void arg_min(KernelContext& ctx) {
  arg_reduce(ctx, false);
}

}  // namespace

KPT_REGISTER_OP("", "ArgMax", 1, arg_max);
KPT_REGISTER_OP("", "ArgMin", 1, arg_min);

}  // namespace kpt::ops
