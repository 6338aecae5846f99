// MaxRoiPool (Caffe-style integer bins) and RoiAlign (bilinear samples per bin).
#include <cmath>
#include <limits>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void max_roi_pool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  require_float(ctx, x, "MaxRoiPool input");
  ctx.check(x.rank() == 4, [&] { return "input must be N x C x H x W, got " + x.describe(); });
  ctx.check(rois.rank() == 2 && rois.dim(1) == 5, [&] {
    return "rois must be [num_rois, 5] (batch, x1, y1, x2, y2), got " + rois.describe();
  });
  const auto pooled = ctx.attr_ints("pooled_shape");
  ctx.check(pooled.size() == 2 && pooled[0] > 0 && pooled[1] > 0,
            "pooled_shape must be two positive values");
  const double scale = ctx.attr_float("spatial_scale", 1.0f);
  const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3), nr = rois.dim(0);
  const int64_t ph_n = pooled[0], pw_n = pooled[1];
  const std::vector<double> xv = to_f64(x), rv = to_f64(rois);
  Dims y_dims = {nr, c, ph_n, pw_n};
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)));
  for (int64_t r = 0; r < nr; ++r) {
    const double* roi = rv.data() + r * 5;
    const int64_t b = static_cast<int64_t>(roi[0]);
    ctx.check(b >= 0 && b < x.dim(0), "roi batch index out of range");
    const int64_t x1 = static_cast<int64_t>(std::round(roi[1] * scale));
    const int64_t y1 = static_cast<int64_t>(std::round(roi[2] * scale));
    const int64_t x2 = static_cast<int64_t>(std::round(roi[3] * scale));
    const int64_t y2 = static_cast<int64_t>(std::round(roi[4] * scale));
    const double rh = static_cast<double>(std::max<int64_t>(y2 - y1 + 1, 1));
    const double rw = static_cast<double>(std::max<int64_t>(x2 - x1 + 1, 1));
    const double bh = rh / static_cast<double>(ph_n), bw = rw / static_cast<double>(pw_n);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double* img = xv.data() + (b * c + ch) * h * w;
      for (int64_t ph = 0; ph < ph_n; ++ph)
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          auto clampi = [](int64_t v, int64_t hi) { return std::min(std::max<int64_t>(v, 0), hi); };
          const int64_t hs =
              clampi(static_cast<int64_t>(std::floor(static_cast<double>(ph) * bh)) + y1, h);
          const int64_t he =
              clampi(static_cast<int64_t>(std::ceil(static_cast<double>(ph + 1) * bh)) + y1, h);
          const int64_t ws =
              clampi(static_cast<int64_t>(std::floor(static_cast<double>(pw) * bw)) + x1, w);
          const int64_t we =
              clampi(static_cast<int64_t>(std::ceil(static_cast<double>(pw + 1) * bw)) + x1, w);
          double m = (he <= hs || we <= ws) ? 0.0 : -std::numeric_limits<double>::infinity();
          for (int64_t i = hs; i < he; ++i)
            for (int64_t j = ws; j < we; ++j) m = std::max(m, img[i * w + j]);
          y[static_cast<size_t>(((r * c + ch) * ph_n + ph) * pw_n + pw)] = m;
        }
    }
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

void roi_align(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& bi = ctx.input(2);
  require_float(ctx, x, "RoiAlign input");
  ctx.check(x.rank() == 4, [&] { return "input must be N x C x H x W, got " + x.describe(); });
  ctx.check(rois.rank() == 2 && rois.dim(1) == 4,
            [&] { return "rois must be [num_rois, 4], got " + rois.describe(); });
  ctx.check(bi.rank() == 1 && bi.dim(0) == rois.dim(0),
            [&] { return "batch_indices must be [num_rois], got " + bi.describe(); });
  const std::string mode = ctx.attr_string("mode", "avg");
  ctx.check(mode == "avg" || mode == "max", "mode must be avg or max, got " + mode);
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode",
                                          ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  ctx.check(ctm == "half_pixel" || ctm == "output_half_pixel",
            "coordinate_transformation_mode must be half_pixel or output_half_pixel");
  const bool half = ctm == "half_pixel";
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  const int64_t ratio = ctx.attr_int("sampling_ratio", 0);
  const double scale = ctx.attr_float("spatial_scale", 1.0f);
  ctx.check(oh > 0 && ow > 0 && ratio >= 0, "output sizes must be positive, sampling_ratio >= 0");
  const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3), nr = rois.dim(0);
  const std::vector<double> xv = to_f64(x), rv = to_f64(rois);
  Dims y_dims = {nr, c, oh, ow};
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)));
  const double off = half ? 0.5 : 0.0;
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t b = bi.get_i64(r);
    ctx.check(b >= 0 && b < x.dim(0), "batch index " + std::to_string(b) + " out of range");
    const double* roi = rv.data() + r * 4;
    const double sw = roi[0] * scale - off, sh = roi[1] * scale - off;
    double rw = roi[2] * scale - off - sw, rh = roi[3] * scale - off - sh;
    if (!half) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const double bh = rh / static_cast<double>(oh), bw = rw / static_cast<double>(ow);
    const int64_t gh =
        ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rh / static_cast<double>(oh)));
    const int64_t gw =
        ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rw / static_cast<double>(ow)));
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    for (int64_t ch = 0; ch < c; ++ch) {
      const double* img = xv.data() + (b * c + ch) * h * w;
      for (int64_t ph = 0; ph < oh; ++ph)
        for (int64_t pw = 0; pw < ow; ++pw) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy) {
            double yy = sh + static_cast<double>(ph) * bh +
                        (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              double xx = sw + static_cast<double>(pw) * bw +
                          (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
              double v[4] = {0, 0, 0, 0}, wt[4] = {0, 0, 0, 0};
              if (!(yy < -1.0 || yy > static_cast<double>(h) || xx < -1.0 ||
                    xx > static_cast<double>(w))) {
                double y0 = std::max(yy, 0.0), x0 = std::max(xx, 0.0);
                int64_t yl = static_cast<int64_t>(y0), xl = static_cast<int64_t>(x0), yh, xh;
                if (yl >= h - 1) {
                  yh = yl = h - 1;
                  y0 = static_cast<double>(yl);
                } else {
                  yh = yl + 1;
                }
                if (xl >= w - 1) {
                  xh = xl = w - 1;
                  x0 = static_cast<double>(xl);
                } else {
                  xh = xl + 1;
                }
                const double ly = y0 - static_cast<double>(yl), lx = x0 - static_cast<double>(xl);
                const double hy = 1 - ly, hx = 1 - lx;
                wt[0] = hy * hx, wt[1] = hy * lx, wt[2] = ly * hx, wt[3] = ly * lx;
                v[0] = img[yl * w + xl], v[1] = img[yl * w + xh];
                v[2] = img[yh * w + xl], v[3] = img[yh * w + xh];
              }
              if (mode == "avg") {
                acc += wt[0] * v[0] + wt[1] * v[1] + wt[2] * v[2] + wt[3] * v[3];
              } else {
                const double m = std::max(std::max(wt[0] * v[0], wt[1] * v[1]),
                                          std::max(wt[2] * v[2], wt[3] * v[3]));
                acc = first ? m : std::max(acc, m);
                first = false;
              }
            }
          }
          y[static_cast<size_t>(((r * c + ch) * oh + ph) * ow + pw)] =
              mode == "avg" ? acc / count : acc;
        }
    }
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "MaxRoiPool", 1, max_roi_pool);
KPT_REGISTER_OP("", "RoiAlign", 1, roi_align);

}  // namespace kpt::ops::vision
