// DeformConv (2-D): each kernel tap samples the input bilinearly at its offset position.
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

double bilinear_zero(const double* img, int64_t h, int64_t w, double y, double x) {
  if (y <= -1 || y >= static_cast<double>(h) || x <= -1 || x >= static_cast<double>(w)) return 0;
  const int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x));
  const double ly = y - static_cast<double>(y0), lx = x - static_cast<double>(x0);
  auto at = [&](int64_t yy, int64_t xx) {
    return (yy >= 0 && yy < h && xx >= 0 && xx < w) ? img[yy * w + xx] : 0.0;
  };
  return (1 - ly) * (1 - lx) * at(y0, x0) + (1 - ly) * lx * at(y0, x0 + 1) +
         ly * (1 - lx) * at(y0 + 1, x0) + ly * lx * at(y0 + 1, x0 + 1);
}

void deform_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& offset = ctx.input(2);
  require_float(ctx, x, "DeformConv input");
  if (x.rank() != 4) ctx.unsupported("DeformConv is implemented for 2-D inputs (rank 4) only");
  ctx.check(w.rank() == 4, [&] { return "weight must be rank 4, got " + w.describe(); });
  const int64_t group = ctx.attr_int("group", 1);
  const int64_t og = ctx.attr_int("offset_group", 1);
  ctx.check(group >= 1 && og >= 1, "group and offset_group must be positive");
  const int64_t n_batch = x.dim(0), c_in = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t m_out = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  ctx.check(cg * group == c_in, "input channels must equal weight dim 1 times group");
  ctx.check(m_out % group == 0 && c_in % og == 0,
            "output channels must divide by group and input channels by offset_group");
  Window win = make_window(ctx, {h, wd}, {kh, kw}, false);
  const int64_t oh = win.out[0], ow = win.out[1], k_sp = kh * kw;
  ctx.check(offset.rank() == 4 && offset.dim(0) == n_batch && offset.dim(1) == og * 2 * k_sp &&
                offset.dim(2) == oh && offset.dim(3) == ow,
            [&] {
              return "offset must be N x (offset_group*2*kH*kW) x oH x oW, got " +
                     offset.describe();
            });
  const std::vector<double> xv = to_f64(x), wv = to_f64(w), ov = to_f64(offset);
  std::vector<double> bv, mv;
  if (ctx.has_input(3)) {
    bv = to_f64(ctx.input(3));
    ctx.check(static_cast<int64_t>(bv.size()) == m_out,
              "bias must have one value per output channel");
  }
  if (ctx.has_input(4)) {
    const Tensor& mask = ctx.input(4);
    ctx.check(mask.numel() == n_batch * og * k_sp * oh * ow, [&] {
      return "mask must be N x (offset_group*kH*kW) x oH x oW, got " + mask.describe();
    });
    mv = to_f64(mask);
  }
  const int64_t mg = m_out / group, c_per_og = c_in / og, o_sp = oh * ow;
  // Sampled columns: for each (n, c, tap, out position) the masked, interpolated input.
  std::vector<double> cols(static_cast<size_t>(c_in * k_sp * o_sp));
  Dims y_dims = {n_batch, m_out, oh, ow};
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)), 0.0);
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t c = 0; c < c_in; ++c) {
      const int64_t g = c / c_per_og;
      const double* img = xv.data() + (n * c_in + c) * h * wd;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t k = i * kw + j;
          const double* dy = ov.data() + ((n * og + g) * 2 * k_sp + 2 * k) * o_sp;
          const double* dx = dy + o_sp;
          const double* mk = mv.empty() ? nullptr : mv.data() + ((n * og + g) * k_sp + k) * o_sp;
          for (int64_t a = 0; a < oh; ++a)
            for (int64_t b = 0; b < ow; ++b) {
              const int64_t o = a * ow + b;
              const double py =
                  static_cast<double>(a * win.strides[0] - win.pads[0] + i * win.dilations[0]) +
                  dy[o];
              const double px =
                  static_cast<double>(b * win.strides[1] - win.pads[1] + j * win.dilations[1]) +
                  dx[o];
              double v = bilinear_zero(img, h, wd, py, px);
              if (mk) v *= mk[o];
              cols[static_cast<size_t>((c * k_sp + k) * o_sp + o)] = v;
            }
        }
    }
    for (int64_t m = 0; m < m_out; ++m) {
      const int64_t g = m / mg;
      double* yo = y.data() + (n * m_out + m) * o_sp;
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t k = 0; k < k_sp; ++k) {
          const double wt = wv[static_cast<size_t>((m * cg + c) * k_sp + k)];
          const double* col = cols.data() + ((g * cg + c) * k_sp + k) * o_sp;
          for (int64_t o = 0; o < o_sp; ++o) yo[o] += wt * col[o];
        }
      if (!bv.empty())
        for (int64_t o = 0; o < o_sp; ++o) yo[o] += bv[static_cast<size_t>(m)];
    }
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "DeformConv", 1, deform_conv);

}  // namespace kpt::ops::vision
