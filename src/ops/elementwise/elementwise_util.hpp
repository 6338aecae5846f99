#pragma once
// Helpers shared by the element-wise kernels: maps over one tensor and broadcast loops over
// two or more. Storage-only floats (f16, bf16, fp8, ...) are widened to f32 by the callers via
// to_compute and rounded back once via from_compute.
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::ew {

// The op_util dispatchers, with errors that name this kernel's node.
template <typename F>
decltype(auto) dispatch_float_op(const KernelContext& ctx, DType t, F&& f) {
  return dispatch_float(t, ctx.node().label(), std::forward<F>(f));
}

template <typename F>
decltype(auto) dispatch_integer(const KernelContext& ctx, DType t, F&& f) {
  return ops::dispatch_integer(t, ctx.node().label(), std::forward<F>(f));
}

// Calls f for every numeric type (floats after to_compute, all integers); bool is refused.
template <typename F>
decltype(auto) dispatch_numeric(const KernelContext& ctx, DType t, F&& f) {
  if (t == DType::F32) return f.template operator()<float>();
  if (t == DType::F64) return f.template operator()<double>();
  return dispatch_integer(ctx, t, std::forward<F>(f));
}

// out[i] = op(x[i]) over a float tensor of any float type; op takes and returns T.
template <typename Op>
Tensor map_float(const KernelContext& ctx, const Tensor& in, Op op) {
  const Tensor x = to_compute(in);
  Tensor out(x.dtype(), x.dims());
  dispatch_float_op(ctx, x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) po[i] = static_cast<T>(op(px[i]));
  });
  return from_compute(out, in.dtype());
}

// out[i] = op(x[i]) over any numeric tensor (floats and integers); op takes and returns T.
template <typename Op>
Tensor map_numeric(const KernelContext& ctx, const Tensor& in, Op op) {
  const Tensor x = to_compute(in);
  Tensor out(x.dtype(), x.dims());
  dispatch_numeric(ctx, x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) po[i] = static_cast<T>(op(px[i]));
  });
  return from_compute(out, in.dtype());
}

// Before opset 7, binary ops broadcast only when the `broadcast` attribute is set, and then
// `axis` places B's dims inside A's; returns B reshaped so that numpy broadcasting agrees.
inline Tensor legacy_broadcast_rhs(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  if (ctx.opset() >= 7 || !ctx.node().has_attr("axis") || ctx.attr_int("broadcast", 0) == 0) {
    return b;
  }
  const auto rank = static_cast<int64_t>(a.rank());
  int64_t axis = ctx.attr_int("axis", 0);
  if (axis < 0) axis += rank;
  const auto brank = static_cast<int64_t>(b.rank());
  ctx.check(axis >= 0 && axis + brank <= rank, "axis " + std::to_string(ctx.attr_int("axis", 0)) +
                                                   " cannot place B " + b.describe() +
                                                   " inside A " + a.describe());
  Dims dims = b.dims();
  for (int64_t i = axis + brank; i < rank; ++i) dims.push_back(1);
  return b.reshaped(dims);
}

// Broadcast loop: out[i] = op(a[ia], b[ib]) with A of type TA, B of type TB, out of type R.
template <typename TA, typename TB, typename R, typename Op>
void broadcast_loop(const Tensor& a, const Tensor& b, Tensor& out, Op op) {
  const TA* pa = a.data<TA>();
  const TB* pb = b.data<TB>();
  R* po = out.data<R>();
  const int64_t n = out.numel();
  if (a.dims() == out.dims() && b.dims() == out.dims()) {
    for (int64_t i = 0; i < n; ++i) po[i] = static_cast<R>(op(pa[i], pb[i]));
    return;
  }
  const auto oa = broadcast_offsets(out.dims(), a.dims());
  const auto ob = broadcast_offsets(out.dims(), b.dims());
  for (int64_t i = 0; i < n; ++i) {
    po[i] = static_cast<R>(op(pa[oa[static_cast<size_t>(i)]], pb[ob[static_cast<size_t>(i)]]));
  }
}

inline void check_same_dtype(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  ctx.check(a.dtype() == b.dtype(), "inputs have different element types " + a.describe() +
                                        " and " + b.describe() + "; expected the same type");
}

// Broadcast binary op whose result has the inputs' type. `dispatcher` picks the allowed types.
template <typename Dispatcher, typename Op>
Tensor binary_same_type(const KernelContext& ctx, const Tensor& a_in, const Tensor& b_in,
                        Dispatcher dispatcher, Op op) {
  check_same_dtype(ctx, a_in, b_in);
  const Tensor a = to_compute(a_in);
  const Tensor b = to_compute(legacy_broadcast_rhs(ctx, a_in, b_in));
  Tensor out(a.dtype(), broadcast_dims(a.dims(), b.dims()));
  dispatcher(ctx, a.dtype(), [&]<typename T>() { broadcast_loop<T, T, T>(a, b, out, op); });
  return from_compute(out, a_in.dtype());
}

// Broadcast binary predicate: bool result.
template <typename Dispatcher, typename Op>
Tensor binary_to_bool(const KernelContext& ctx, const Tensor& a_in, const Tensor& b_in,
                      Dispatcher dispatcher, Op op) {
  check_same_dtype(ctx, a_in, b_in);
  const Tensor a = to_compute(a_in);
  const Tensor b = to_compute(legacy_broadcast_rhs(ctx, a_in, b_in));
  Tensor out(DType::Bool, broadcast_dims(a.dims(), b.dims()));
  dispatcher(ctx, a.dtype(), [&]<typename T>() {
    broadcast_loop<T, T, bool>(a, b, out, [&](T x, T y) { return static_cast<bool>(op(x, y)); });
  });
  return out;
}

// Dispatchers usable as the `dispatcher` argument above.
struct AnyNumeric {
  template <typename F>
  decltype(auto) operator()(const KernelContext& ctx, DType t, F&& f) const {
    return dispatch_numeric(ctx, t, std::forward<F>(f));
  }
};
struct AnyFloat {
  template <typename F>
  decltype(auto) operator()(const KernelContext& ctx, DType t, F&& f) const {
    return dispatch_float_op(ctx, t, std::forward<F>(f));
  }
};
struct AnyInteger {
  template <typename F>
  decltype(auto) operator()(const KernelContext& ctx, DType t, F&& f) const {
    return dispatch_integer(ctx, t, std::forward<F>(f));
  }
};
struct OnlyBool {
  template <typename F>
  decltype(auto) operator()(const KernelContext& ctx, DType t, F&& f) const {
    if (t != DType::Bool) {
      ctx.unsupported("element type " + std::string(dtype_name(t)) +
                      " is not supported; expected bool");
    }
    return f.template operator()<bool>();
  }
};
// Numbers and bool (for Equal and the like).
struct AnyPlain {
  template <typename F>
  decltype(auto) operator()(const KernelContext& ctx, DType t, F&& f) const {
    if (t == DType::Bool) return f.template operator()<bool>();
    return dispatch_numeric(ctx, t, std::forward<F>(f));
  }
};

}  // namespace kpt::ops::ew
