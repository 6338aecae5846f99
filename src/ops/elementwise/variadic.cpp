// Variadic element-wise reductions over inputs with broadcasting: Min, Max, Sum, Mean.
#include <cmath>
#include <type_traits>
#include <vector>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

// Folds the inputs pairwise with `op` (in the compute type) and applies `finish` to the result.
template <typename Op, typename Finish>
void fold_inputs(KernelContext& ctx, Op op, Finish finish) {
  ctx.check(ctx.num_inputs() >= 1 && ctx.has_input(0), "expects at least one input");
  const DType original = ctx.input(0).dtype();
  std::vector<Tensor> inputs;
  std::vector<Dims> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.input(i);
    ew::check_same_dtype(ctx, ctx.input(0), t);
    inputs.push_back(to_compute(t));
    shapes.push_back(t.dims());
  }
  const Dims dims = broadcast_all(shapes);
  const auto n = static_cast<int64_t>(inputs.size());
  Tensor out(inputs[0].dtype(), dims);
  ew::dispatch_numeric(ctx, inputs[0].dtype(), [&]<typename T>() {
    T* po = out.data<T>();
    const auto o0 = broadcast_offsets(dims, inputs[0].dims());
    const T* p0 = inputs[0].data<T>();
    for (size_t k = 0; k < o0.size(); ++k) po[k] = p0[o0[k]];
    for (size_t i = 1; i < inputs.size(); ++i) {
      const auto oi = broadcast_offsets(dims, inputs[i].dims());
      const T* pi = inputs[i].data<T>();
      for (size_t k = 0; k < oi.size(); ++k) po[k] = static_cast<T>(op(po[k], pi[oi[k]]));
    }
    for (int64_t k = 0; k < out.numel(); ++k) po[k] = static_cast<T>(finish(po[k], n));
  });
  ctx.set_output(0, from_compute(out, original));
}

template <typename T>
bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(x);
  } else {
    return false;
  }
}

auto keep = []<typename T>(T x, int64_t) { return x; };

void min_kernel(KernelContext& ctx) {
  // NaN propagates, as numpy's minimum does.
  fold_inputs(
      ctx, []<typename T>(T x, T y) { return is_nan(x) || is_nan(y) ? x + y : (y < x ? y : x); },
      keep);
}
void max_kernel(KernelContext& ctx) {
  fold_inputs(
      ctx, []<typename T>(T x, T y) { return is_nan(x) || is_nan(y) ? x + y : (y > x ? y : x); },
      keep);
}
void sum_kernel(KernelContext& ctx) {
  fold_inputs(
      ctx, []<typename T>(T x, T y) { return static_cast<T>(x + y); }, keep);
}
void mean_kernel(KernelContext& ctx) {
  fold_inputs(
      ctx, []<typename T>(T x, T y) { return static_cast<T>(x + y); },
      []<typename T>(T x, int64_t n) { return static_cast<T>(x / static_cast<T>(n)); });
}

}  // namespace

KPT_REGISTER_OP("", "Min", 1, min_kernel);
KPT_REGISTER_OP("", "Max", 1, max_kernel);
KPT_REGISTER_OP("", "Sum", 1, sum_kernel);
KPT_REGISTER_OP("", "Mean", 1, mean_kernel);

}  // namespace kpt::ops
