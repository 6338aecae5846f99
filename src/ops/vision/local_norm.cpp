// LRN, LpNormalization and MeanVarianceNormalization.
#include <algorithm>
#include <cmath>
#include <set>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void lrn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "LRN input");
  ctx.check(x.rank() >= 2, [&] { return "input must be N x C x ..., got " + x.describe(); });
  ctx.check(ctx.node().has_attr("size"), "size attribute is required");
  const int64_t size = ctx.attr_int("size", 1);
  ctx.check(size >= 1, "size must be positive");
  const double alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f);
  const double bias = ctx.attr_float("bias", 1.0f);
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t sp = n * c == 0 ? 0 : x.numel() / (n * c);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < sp; ++i) {
        double s = 0;
        for (int64_t k = std::max<int64_t>(0, ch - lo); k <= std::min(c - 1, ch + hi); ++k) {
          const double v = xv[static_cast<size_t>((b * c + k) * sp + i)];
          s += v * v;
        }
        const size_t at = static_cast<size_t>((b * c + ch) * sp + i);
        y[at] = xv[at] / std::pow(bias + alpha / static_cast<double>(size) * s, beta);
      }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
}

void lp_normalization(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "LpNormalization input");
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -1), static_cast<int64_t>(x.rank()));
  const int64_t p = ctx.attr_int("p", 2);
  ctx.check(p == 1 || p == 2, "p must be 1 or 2, got " + std::to_string(p));
  const int64_t len = x.dim(axis);
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.rank(); ++d) inner *= x.dims()[d];
  const int64_t outer = len * inner == 0 ? 0 : x.numel() / (len * inner);
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(xv.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double s = 0;
      for (int64_t k = 0; k < len; ++k) {
        const double v = xv[static_cast<size_t>((o * len + k) * inner + i)];
        s += p == 1 ? std::fabs(v) : v * v;
      }
      const double norm = p == 1 ? s : std::sqrt(s);
      for (int64_t k = 0; k < len; ++k) {
        const size_t at = static_cast<size_t>((o * len + k) * inner + i);
        y[at] = norm == 0 ? 0.0 : xv[at] / norm;  // zero vectors stay zero, as in the reference
      }
    }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
}

void mean_variance_normalization(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "MeanVarianceNormalization input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::set<int64_t> axes;
  for (int64_t a : ctx.attr_ints("axes", {0, 2, 3})) axes.insert(normalize_axis(a, rank));
  // Iterate over "kept" positions; each group is the set of elements sharing kept coords.
  Dims kept_dims, red_dims;
  for (int64_t d = 0; d < rank; ++d)
    (axes.count(d) ? red_dims : kept_dims).push_back(x.dims()[static_cast<size_t>(d)]);
  const auto strides = strides_of(x.dims());
  const int64_t kept_n = product(kept_dims), red_n = product(red_dims);
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(xv.size());
  std::vector<int64_t> kc, rc, offs(static_cast<size_t>(red_n));
  for (int64_t r = 0; r < red_n; ++r) {
    unravel(r, red_dims, rc);
    int64_t off = 0, j = 0;
    for (int64_t d = 0; d < rank; ++d)
      if (axes.count(d)) off += rc[static_cast<size_t>(j++)] * strides[static_cast<size_t>(d)];
    offs[static_cast<size_t>(r)] = off;
  }
  for (int64_t k = 0; k < kept_n; ++k) {
    unravel(k, kept_dims, kc);
    int64_t base = 0, j = 0;
    for (int64_t d = 0; d < rank; ++d)
      if (!axes.count(d)) base += kc[static_cast<size_t>(j++)] * strides[static_cast<size_t>(d)];
    double s = 0, s2 = 0;
    for (int64_t off : offs) {
      const double v = xv[static_cast<size_t>(base + off)];
      s += v;
      s2 += v * v;
    }
    const double mean = s / static_cast<double>(red_n);
    const double var = std::max(0.0, s2 / static_cast<double>(red_n) - mean * mean);
    const double denom = std::sqrt(var) + 1e-9;
    for (int64_t off : offs) {
      const size_t at = static_cast<size_t>(base + off);
      y[at] = (xv[at] - mean) / denom;
    }
  }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "LRN", 1, lrn);
KPT_REGISTER_OP("", "LpNormalization", 1, lp_normalization);
KPT_REGISTER_OP("", "MeanVarianceNormalization", 1, mean_variance_normalization);

}  // namespace kpt::ops::vision
