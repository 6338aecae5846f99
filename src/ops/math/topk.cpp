// TopK: the k largest (or smallest) elements along an axis and their indices. Equal values
// keep the lower index first.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void top_k(KernelContext& ctx) {
  const Tensor& original = ctx.input(0);
  const Tensor x = to_compute(original);
  ctx.check(x.rank() >= 1, [&] { return "input must have rank >= 1, got " + x.describe(); });
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), static_cast<int64_t>(x.rank()));
  int64_t k;
  if (ctx.opset() < 10) {
    ctx.check(ctx.node().has_attr("k"), "attribute k is required before opset 10");
    k = ctx.attr_int("k", 0);
  } else {
    const Tensor& kt = ctx.input(1);
    ctx.check(kt.numel() == 1,
              [&] { return "K must hold exactly one value, got " + kt.describe(); });
    k = kt.get_i64(0);
  }
  const bool largest = ctx.opset() < 11 || ctx.attr_int("largest", 1) != 0;
  const int64_t len = x.dims()[axis];
  ctx.check(k >= 0 && k <= len, [&] {
    return "k = " + std::to_string(k) + " must be in [0, " + std::to_string(len) + "] for axis " +
           std::to_string(axis) + " of " + x.describe();
  });

  std::vector<bool> along(x.rank(), false);
  along[axis] = true;
  const math::AxisSplit in_split = math::split_axes(x.dims(), along);
  Dims out_dims = x.dims();
  out_dims[axis] = k;
  const math::AxisSplit out_split = math::split_axes(out_dims, along);
  Tensor values(x.dtype(), out_dims);
  Tensor indices(DType::I64, out_dims);
  int64_t* pi = indices.data<int64_t>();
  dispatch(x.dtype(), "TopK", [&]<typename T>() {
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    std::vector<int64_t> order(static_cast<size_t>(len));
    for (size_t o = 0; o < in_split.outer.size(); ++o) {
      const int64_t base = in_split.outer[o];
      auto at = [&](int64_t i) { return px[base + in_split.inner[i]]; };
      // NaN ranks above everything for largest and below everything for smallest.
      auto before = [&](int64_t i, int64_t j) {
        const T a = at(i), b = at(j);
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(a) || std::isnan(b)) {
            if (std::isnan(a) && std::isnan(b)) return i < j;
            return largest ? std::isnan(a) : std::isnan(b);
          }
        }
        if (a != b) return largest ? a > b : a < b;
        return i < j;
      };
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t r = 0; r < k; ++r) {
        const int64_t off = out_split.outer[o] + out_split.inner[r];
        pv[off] = at(order[r]);
        pi[off] = order[r];
      }
    }
  });
  ctx.set_output(0, from_compute(values, original.dtype()));
  ctx.set_output(1, indices);
}

}  // namespace

KPT_REGISTER_OP("", "TopK", 1, top_k);

}  // namespace kpt::ops
