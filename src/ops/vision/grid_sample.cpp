// GridSample (N-D; nearest, linear and cubic) and AffineGrid.
#include <array>
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

// Folds x into [lo, hi] by repeated reflection at the bounds.
double reflect(double x, double lo, double hi) {
  const double rng = hi - lo;
  if (rng <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = static_cast<int64_t>(dx / rng);
    const double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = static_cast<int64_t>(dx / rng);
    const double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void cubic_coeffs(double t, double c[4]) {
  const double a = -0.75;
  t = std::fabs(t);
  c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

void grid_sample(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  require_float(ctx, x, "GridSample input");
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  const size_t r = x.rank() - 2;
  ctx.check(grid.rank() == r + 2 && grid.dim(0) == x.dim(0) &&
                grid.dim(static_cast<int64_t>(r + 1)) == static_cast<int64_t>(r),
            [&] {
              return "grid must be N x out_spatial... x " + std::to_string(r) + ", got " +
                     grid.describe();
            });
  std::string mode = ctx.attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  ctx.check(mode == "linear" || mode == "nearest" || mode == "cubic",
            "mode must be linear, nearest or cubic, got " + mode);
  const std::string padding = ctx.attr_string("padding_mode", "zeros");
  ctx.check(padding == "zeros" || padding == "border" || padding == "reflection",
            "padding_mode must be zeros, border or reflection, got " + padding);
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  const int64_t n = x.dim(0), c = x.dim(1);
  Dims in(x.dims().begin() + 2, x.dims().end());
  Dims out(grid.dims().begin() + 1, grid.dims().end() - 1);
  const int64_t in_sp = product(in), out_sp = product(out);
  const std::vector<double> xv = to_f64(x), gv = to_f64(grid);
  Dims y_dims = {n, c};
  y_dims.insert(y_dims.end(), out.begin(), out.end());
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)), 0.0);
  std::vector<double> lo(r), hi(r);
  for (size_t d = 0; d < r; ++d) {
    lo[d] = align ? 0.0 : -0.5;
    hi[d] = align ? static_cast<double>(in[d] - 1) : static_cast<double>(in[d]) - 0.5;
  }
  const int64_t taps_per_dim = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4;
  int64_t n_taps = 1;
  for (size_t d = 0; d < r; ++d) n_taps *= taps_per_dim;
  std::vector<double> pos(r);
  std::vector<int64_t> base(r);
  std::vector<std::array<double, 4>> wts(r);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < out_sp; ++o) {
      const double* g = gv.data() + (b * out_sp + o) * static_cast<int64_t>(r);
      for (size_t d = 0; d < r; ++d) {
        const double gn = g[r - 1 - d];  // grid lists x (last dim) first
        const double len = static_cast<double>(in[d]);
        double p = align ? (gn + 1) / 2 * (len - 1) : ((gn + 1) * len - 1) / 2;
        if (mode == "nearest") p = std::nearbyint(p);
        pos[d] = p;
      }
      bool outside = false;
      for (size_t d = 0; d < r; ++d) outside = outside || pos[d] < lo[d] || pos[d] > hi[d];
      if (outside) {
        for (size_t d = 0; d < r; ++d) {
          if (padding == "border")
            pos[d] = std::clamp(pos[d], 0.0, static_cast<double>(in[d] - 1));
          else if (padding == "reflection")
            pos[d] = reflect(pos[d], lo[d], hi[d]);
        }
      }
      for (size_t d = 0; d < r; ++d) {
        if (mode == "nearest") {
          base[d] = static_cast<int64_t>(pos[d]);
          wts[d] = {1, 0, 0, 0};
        } else if (mode == "linear") {
          const double f = std::floor(pos[d]);
          base[d] = static_cast<int64_t>(f);
          wts[d] = {1 - (pos[d] - f), pos[d] - f, 0, 0};
        } else {
          const double f = std::floor(pos[d]);
          base[d] = static_cast<int64_t>(f) - 1;
          double cc[4];
          cubic_coeffs(pos[d] - f, cc);
          wts[d] = {cc[0], cc[1], cc[2], cc[3]};
        }
      }
      for (int64_t t = 0; t < n_taps; ++t) {
        int64_t rem = t, off = 0;
        double w = 1;
        bool zero = false;
        for (size_t d = r; d-- > 0;) {
          const int64_t k = rem % taps_per_dim;
          rem /= taps_per_dim;
          w *= wts[d][static_cast<size_t>(k)];
          int64_t idx = base[d] + k;
          if (idx < 0 || idx >= in[d]) {
            if (padding == "zeros")
              zero = true;
            else if (padding == "border")
              idx = std::clamp<int64_t>(idx, 0, in[d] - 1);
            else
              idx = static_cast<int64_t>(reflect(static_cast<double>(idx), lo[d], hi[d]));
            idx = std::clamp<int64_t>(idx, 0, in[d] - 1);
          }
          int64_t stride = 1;
          for (size_t e = d + 1; e < r; ++e) stride *= in[e];
          off += idx * stride;
        }
        if (zero || w == 0) continue;
        for (int64_t ch = 0; ch < c; ++ch)
          y[static_cast<size_t>((b * c + ch) * out_sp + o)] +=
              w * xv[static_cast<size_t>((b * c + ch) * in_sp + off)];
      }
    }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

void affine_grid(KernelContext& ctx) {
  const Tensor& theta = ctx.input(0);
  require_float(ctx, theta, "AffineGrid theta");
  const std::vector<int64_t> size = ctx.input(1).to_i64_vector();
  ctx.check(size.size() == 4 || size.size() == 5,
            "size must be [N, C, H, W] or [N, C, D, H, W], got " + std::to_string(size.size()) +
                " values");
  const size_t r = size.size() - 2;
  const int64_t n = size[0];
  ctx.check(theta.rank() == 3 && theta.dim(0) == n && theta.dim(1) == static_cast<int64_t>(r) &&
                theta.dim(2) == static_cast<int64_t>(r + 1),
            [&] {
              return "theta must be N x " + std::to_string(r) + " x " + std::to_string(r + 1) +
                     ", got " + theta.describe();
            });
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  Dims sp(size.begin() + 2, size.end());
  for (int64_t v : sp) ctx.check(v >= 0, "size must be non-negative");
  const int64_t count = product(sp);
  auto coord = [&](int64_t i, int64_t len) {
    if (align)
      return len == 1 ? -1.0 : -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(len - 1);
    return (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(len) - 1.0;
  };
  const std::vector<double> th = to_f64(theta);
  Dims y_dims = {n};
  y_dims.insert(y_dims.end(), sp.begin(), sp.end());
  y_dims.push_back(static_cast<int64_t>(r));
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)));
  std::vector<int64_t> c;
  std::vector<double> v(r + 1, 1.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < count; ++p) {
      unravel(p, sp, c);
      // Homogeneous point in (x, y[, z]) order: x is the last spatial dim.
      for (size_t d = 0; d < r; ++d) v[d] = coord(c[r - 1 - d], sp[r - 1 - d]);
      for (size_t i = 0; i < r; ++i) {
        double s = 0;
        for (size_t j = 0; j <= r; ++j)
          s += th[static_cast<size_t>(b) * r * (r + 1) + i * (r + 1) + j] * v[j];
        y[static_cast<size_t>(b * count + p) * r + i] = s;
      }
    }
  ctx.set_output(0, from_f64(y, y_dims, theta.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "GridSample", 1, grid_sample);
KPT_REGISTER_OP("", "AffineGrid", 1, affine_grid);

}  // namespace kpt::ops::vision
