// The Reduce* family: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
// ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

enum class Kind { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

// Opset from which `axes` is an input instead of an attribute.
int axes_input_since(Kind k) {
  return k == Kind::Sum ? 13 : 18;
}

template <typename T>
T reduce_max_min(Kind kind, const T* x, int64_t base, const std::vector<int64_t>& inner) {
  const bool is_max = kind == Kind::Max;
  T best;
  if constexpr (std::is_same_v<T, bool>) {
    best = !is_max;
  } else if constexpr (std::is_floating_point_v<T>) {
    best = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  } else {
    best = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
  for (int64_t r : inner) {
    const T v = x[base + r];
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(v)) return v;
    }
    if (is_max ? v > best : v < best) best = v;
  }
  return best;
}

// Sum-like reductions for floats, computed in double.
double reduce_float(Kind kind, auto get, size_t n) {
  switch (kind) {
    case Kind::Sum:
    case Kind::Mean:
    case Kind::LogSum: {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += get(i);
      if (kind == Kind::Mean) return s / static_cast<double>(n);
      if (kind == Kind::LogSum) return std::log(s);
      return s;
    }
    case Kind::Prod: {
      double p = 1;
      for (size_t i = 0; i < n; ++i) p *= get(i);
      return p;
    }
    case Kind::L1: {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += std::fabs(get(i));
      return s;
    }
    case Kind::L2:
    case Kind::SumSquare: {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += get(i) * get(i);
      return kind == Kind::L2 ? std::sqrt(s) : s;
    }
    case Kind::LogSumExp: {
      double m = -std::numeric_limits<double>::infinity();
      for (size_t i = 0; i < n; ++i) {
        const double v = get(i);
        if (std::isnan(v)) return v;
        m = std::max(m, v);
      }
      if (std::isinf(m)) return m;  // empty, all -inf, or some +inf
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += std::exp(get(i) - m);
      return m + std::log(s);
    }
    default:
      return 0;
  }
}

// Integer reductions: exact (wrapping) in 64 bits where the result is an integer, through
// double where it is not (mean truncates like an integer division).
template <typename T>
T reduce_integer(Kind kind, auto get, size_t n) {
  using Acc = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  switch (kind) {
    case Kind::Sum:
    case Kind::Mean:
    case Kind::L1:
    case Kind::SumSquare: {
      Acc s = 0;
      for (size_t i = 0; i < n; ++i) {
        const Acc v = static_cast<Acc>(get(i));
        if (kind == Kind::L1) {
          if constexpr (std::is_signed_v<Acc>)
            s += v < 0 ? -v : v;
          else
            s += v;
        } else if (kind == Kind::SumSquare)
          s += v * v;
        else
          s += v;
      }
      if (kind == Kind::Mean) {
        if (n == 0) return 0;
        s = static_cast<Acc>(s / static_cast<Acc>(n));
      }
      return static_cast<T>(s);
    }
    case Kind::Prod: {
      Acc p = 1;
      for (size_t i = 0; i < n; ++i) p *= static_cast<Acc>(get(i));
      return static_cast<T>(p);
    }
    default: {
      const double r = reduce_float(
          kind, [&](size_t i) { return static_cast<double>(get(i)); }, n);
      if (!std::isfinite(r)) return 0;
      return static_cast<T>(r);
    }
  }
}

void reduce(KernelContext& ctx, Kind kind) {
  const Tensor& original = ctx.input(0);
  const Tensor x = to_compute(original);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;

  std::vector<int64_t> axes;
  bool have_axes = false;
  if (ctx.opset() >= axes_input_since(kind)) {
    if (ctx.has_input(1)) {
      axes = ctx.input(1).to_i64_vector();
      have_axes = !axes.empty();
    }
    if (!have_axes && ctx.attr_int("noop_with_empty_axes", 0) != 0) {
      ctx.set_output(0, original);
      return;
    }
  } else {
    axes = ctx.attr_ints("axes");
    have_axes = !axes.empty();
  }

  std::vector<bool> reduced(x.rank(), !have_axes);
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank);
    ctx.check(!reduced[n], "axis " + std::to_string(a) + " is listed twice in axes");
    reduced[n] = true;
  }

  Dims out_dims;
  for (size_t d = 0; d < x.rank(); ++d) {
    if (!reduced[d])
      out_dims.push_back(x.dims()[d]);
    else if (keepdims)
      out_dims.push_back(1);
  }

  const math::AxisSplit split = math::split_axes(x.dims(), reduced);
  Tensor out(x.dtype(), out_dims);
  dispatch(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const bool max_min = kind == Kind::Max || kind == Kind::Min;
    if constexpr (std::is_same_v<T, bool>) {
      if (!max_min) ctx.unsupported("bool inputs are only allowed for ReduceMax and ReduceMin");
    }
    [[maybe_unused]] const size_t n = split.inner.size();
    for (size_t o = 0; o < split.outer.size(); ++o) {
      const int64_t base = split.outer[o];
      if (max_min) {
        po[o] = reduce_max_min<T>(kind, px, base, split.inner);
        continue;
      }
      if constexpr (!std::is_same_v<T, bool>) {
        auto get = [&](size_t i) { return px[base + split.inner[i]]; };
        if constexpr (std::is_floating_point_v<T>) {
          po[o] = static_cast<T>(reduce_float(
              kind, [&](size_t i) { return static_cast<double>(get(i)); }, n));
        } else {
          po[o] = reduce_integer<T>(kind, get, n);
        }
      }
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

void reduce_sum(KernelContext& ctx) {
  reduce(ctx, Kind::Sum);
}
void reduce_mean(KernelContext& ctx) {
  reduce(ctx, Kind::Mean);
}
void reduce_max(KernelContext& ctx) {
  reduce(ctx, Kind::Max);
}
void reduce_min(KernelContext& ctx) {
  reduce(ctx, Kind::Min);
}
void reduce_prod(KernelContext& ctx) {
  reduce(ctx, Kind::Prod);
}
void reduce_l1(KernelContext& ctx) {
  reduce(ctx, Kind::L1);
}
void reduce_l2(KernelContext& ctx) {
  reduce(ctx, Kind::L2);
}
void reduce_log_sum(KernelContext& ctx) {
  reduce(ctx, Kind::LogSum);
}
void reduce_log_sum_exp(KernelContext& ctx) {
  reduce(ctx, Kind::LogSumExp);
}
void reduce_sum_square(KernelContext& ctx) {
  reduce(ctx, Kind::SumSquare);
}

}  // namespace

KPT_REGISTER_OP("", "ReduceSum", 1, reduce_sum);
KPT_REGISTER_OP("", "ReduceMean", 1, reduce_mean);
KPT_REGISTER_OP("", "ReduceMax", 1, reduce_max);
KPT_REGISTER_OP("", "ReduceMin", 1, reduce_min);
KPT_REGISTER_OP("", "ReduceProd", 1, reduce_prod);
KPT_REGISTER_OP("", "ReduceL1", 1, reduce_l1);
KPT_REGISTER_OP("", "ReduceL2", 1, reduce_l2);
KPT_REGISTER_OP("", "ReduceLogSum", 1, reduce_log_sum);
KPT_REGISTER_OP("", "ReduceLogSumExp", 1, reduce_log_sum_exp);
KPT_REGISTER_OP("", "ReduceSumSquare", 1, reduce_sum_square);

}  // namespace kpt::ops
