// Resize (opsets 10-19+) and Upsample. Interpolation is separable: every resized axis gets,
// for each output index, a list of (input index, weight) taps, applied one axis at a time.
// The taps follow the ONNX reference (neighbour choice, edge clamping, exclude_outside,
// antialias filters) so results match it, not only the formula in the spec text.
#include <algorithm>
#include <cmath>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

struct Params {
  std::string mode = "nearest";
  std::string ctm = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  bool antialias = false;
};

struct AxisTaps {
  std::vector<size_t> start;  // per output index, range into taps; size out + 1
  std::vector<std::pair<int64_t, double>> taps;
  std::vector<char> extrapolate;  // per output index
};

double cubic_kernel(double x, double a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// Interpolation weights for the neighbours of a point at fractional offset `ratio`, the
// first weight belonging to position ceil(x) - n/2.
std::vector<double> coefficients(const Params& p, double ratio, double scale) {
  if (p.mode == "linear") {
    if (!p.antialias) return {1 - ratio, ratio};
    const double s = std::min(scale, 1.0);
    const int64_t start = static_cast<int64_t>(std::floor(-1 / s) + 1);
    const int64_t footprint = 2 - 2 * start;
    std::vector<double> c;
    double sum = 0;
    for (int64_t i = start; i < start + footprint; ++i) {
      c.push_back(std::clamp(1 - std::fabs((static_cast<double>(i) - ratio) * s), 0.0, 1.0));
      sum += c.back();
    }
    for (double& v : c) v /= sum;
    return c;
  }
  // cubic
  if (!p.antialias) {
    return {cubic_kernel(ratio + 1, p.cubic_a), cubic_kernel(ratio, p.cubic_a),
            cubic_kernel(1 - ratio, p.cubic_a), cubic_kernel(2 - ratio, p.cubic_a)};
  }
  const double s = std::min(scale, 1.0);
  const int64_t i_start = static_cast<int64_t>(std::floor(-2 / s) + 1);
  const int64_t i_end = 2 - i_start;
  std::vector<double> c;
  double sum = 0;
  for (int64_t i = i_start; i < i_end; ++i) {
    c.push_back(cubic_kernel(s * (static_cast<double>(i) - ratio), p.cubic_a));
    sum += c.back();
  }
  for (double& v : c) v /= sum;
  return c;
}

AxisTaps plan_axis(const Params& p, int64_t in, int64_t out, double scale, double roi_start,
                   double roi_end) {
  AxisTaps a;
  a.start.push_back(0);
  const double out_f = scale * static_cast<double>(in);
  const double in_d = static_cast<double>(in);
  for (int64_t o = 0; o < out; ++o) {
    const double xo = static_cast<double>(o);
    double x = 0;
    bool extrap = false;
    if (p.ctm == "half_pixel") {
      x = (xo + 0.5) / scale - 0.5;
    } else if (p.ctm == "half_pixel_symmetric") {
      const double adj = static_cast<double>(out) / out_f;
      const double center = in_d / 2;
      x = center * (1 - adj) + (xo + 0.5) / scale - 0.5;
    } else if (p.ctm == "pytorch_half_pixel") {
      x = out > 1 ? (xo + 0.5) / scale - 0.5 : 0.0;
    } else if (p.ctm == "align_corners") {
      x = out_f == 1 ? 0.0 : xo * (in_d - 1) / (out_f - 1);
    } else if (p.ctm == "tf_half_pixel_for_nn") {
      x = (xo + 0.5) / scale;
    } else if (p.ctm == "asymmetric") {
      x = xo / scale;
    } else {  // tf_crop_and_resize
      x = out_f == 1 ? (roi_end - roi_start) * (in_d - 1) / 2
                     : xo * (roi_end - roi_start) * (in_d - 1) / (out_f - 1);
      x += roi_start * (in_d - 1);
      extrap = x < 0 || x > in_d - 1;
    }
    a.extrapolate.push_back(extrap);
    if (!extrap) {
      if (p.mode == "nearest") {
        const double fl = std::floor(x);
        const double r = x - fl;
        int64_t idx;
        if (r == 0)
          idx = static_cast<int64_t>(fl);
        else if (p.nearest_mode == "round_prefer_floor")
          idx = static_cast<int64_t>(r <= 0.5 ? fl : fl + 1);
        else if (p.nearest_mode == "round_prefer_ceil")
          idx = static_cast<int64_t>(r < 0.5 ? fl : fl + 1);
        else if (p.nearest_mode == "floor")
          idx = static_cast<int64_t>(fl);
        else
          idx = static_cast<int64_t>(fl + 1);
        a.taps.emplace_back(std::clamp<int64_t>(idx, 0, in - 1), 1.0);
      } else {
        const double fl = std::floor(x);
        double ratio = x - fl;
        if (ratio == 0) ratio = 1;
        std::vector<double> c = coefficients(p, ratio, scale);
        const int64_t n = static_cast<int64_t>(c.size());
        const int64_t first = static_cast<int64_t>(std::ceil(x)) - n / 2;
        if (p.exclude_outside) {
          double sum = 0;
          for (int64_t k = 0; k < n; ++k) {
            const int64_t pos = first + k;
            if (pos < 0 || pos >= in) c[static_cast<size_t>(k)] = 0;
            sum += c[static_cast<size_t>(k)];
          }
          if (sum != 0)
            for (double& v : c) v /= sum;
        }
        for (int64_t k = 0; k < n; ++k)
          if (c[static_cast<size_t>(k)] != 0)
            a.taps.emplace_back(std::clamp<int64_t>(first + k, 0, in - 1),
                                c[static_cast<size_t>(k)]);
      }
    }
    a.start.push_back(a.taps.size());
  }
  return a;
}

bool is_identity(const AxisTaps& a, int64_t in, int64_t out) {
  if (in != out) return false;
  for (int64_t o = 0; o < out; ++o) {
    const size_t s = a.start[static_cast<size_t>(o)];
    if (a.extrapolate[static_cast<size_t>(o)] || a.start[static_cast<size_t>(o) + 1] != s + 1 ||
        a.taps[s].first != o || a.taps[s].second != 1.0)
      return false;
  }
  return true;
}

// Resizes `x` (dims in) to `out_dims` given per-axis scales and roi (starts then ends).
Tensor resize_tensor(const KernelContext& ctx, const Tensor& x, const Params& p,
                     const Dims& out_dims, const std::vector<double>& scales,
                     const std::vector<double>& roi) {
  check_output_size(ctx, out_dims);
  std::vector<double> cur = to_f64(x);
  Dims dims = x.dims();
  const size_t rank = dims.size();
  for (size_t ax = 0; ax < rank; ++ax) {
    const int64_t in = dims[ax], out = out_dims[ax];
    if (out > 0 && in == 0) ctx.fail("cannot resize an empty axis to a non-empty one");
    AxisTaps a = plan_axis(p, in, out, scales[ax], roi[ax], roi[ax + rank]);
    if (is_identity(a, in, out)) continue;
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < ax; ++d) outer *= dims[d];
    for (size_t d = ax + 1; d < rank; ++d) inner *= dims[d];
    Dims nd = dims;
    nd[ax] = out;
    std::vector<double> next(static_cast<size_t>(element_count(nd)), 0.0);
    for (int64_t o1 = 0; o1 < outer; ++o1)
      for (int64_t o = 0; o < out; ++o) {
        double* dst = next.data() + (o1 * out + o) * inner;
        if (a.extrapolate[static_cast<size_t>(o)]) {
          std::fill(dst, dst + inner, p.extrapolation);
          continue;
        }
        for (size_t t = a.start[static_cast<size_t>(o)]; t < a.start[static_cast<size_t>(o) + 1];
             ++t) {
          const double* src = cur.data() + (o1 * in + a.taps[t].first) * inner;
          const double w = a.taps[t].second;
          for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
        }
      }
    cur.swap(next);
    dims = nd;
  }
  return from_f64(cur, out_dims, x.dtype());
}

const Tensor* present(const KernelContext& ctx, size_t i) {
  return ctx.has_input(i) && ctx.input(i).numel() > 0 ? &ctx.input(i) : nullptr;
}

void check_scales(const KernelContext& ctx, const std::vector<double>& s) {
  for (double v : s) ctx.check(v > 0, "scales must be positive");
}

void resize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  Params p;
  p.mode = ctx.attr_string("mode", "nearest");
  ctx.check(p.mode == "nearest" || p.mode == "linear" || p.mode == "cubic",
            "mode must be nearest, linear or cubic, got " + p.mode);
  if (ctx.opset() < 11) {
    ctx.check(p.mode != "cubic", "cubic mode needs opset 11");
    p.ctm = "asymmetric";
    p.nearest_mode = "floor";
    const Tensor& st = ctx.input(1);
    ctx.check(st.numel() == rank, "scales must have one value per input dim");
    std::vector<double> scales = to_f64(st);
    check_scales(ctx, scales);
    Dims out(static_cast<size_t>(rank));
    for (int64_t d = 0; d < rank; ++d)
      out[static_cast<size_t>(d)] = static_cast<int64_t>(std::floor(
          static_cast<double>(x.dims()[static_cast<size_t>(d)]) * scales[static_cast<size_t>(d)]));
    std::vector<double> roi(static_cast<size_t>(2 * rank), 0.0);
    ctx.set_output(0, resize_tensor(ctx, x, p, out, scales, roi));
    return;
  }
  p.ctm = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  static const char* kModes[] = {"half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",
                                 "align_corners", "asymmetric",           "tf_crop_and_resize"};
  ctx.check(std::find(std::begin(kModes), std::end(kModes), p.ctm) != std::end(kModes),
            "unknown coordinate_transformation_mode " + p.ctm);
  p.nearest_mode = ctx.attr_string("nearest_mode", "round_prefer_floor");
  ctx.check(p.nearest_mode == "round_prefer_floor" || p.nearest_mode == "round_prefer_ceil" ||
                p.nearest_mode == "floor" || p.nearest_mode == "ceil",
            "unknown nearest_mode " + p.nearest_mode);
  p.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0;
  p.extrapolation = ctx.attr_float("extrapolation_value", 0.0f);
  p.antialias = ctx.attr_int("antialias", 0) != 0 && p.mode != "nearest";
  std::vector<int64_t> axes;
  for (int64_t a : ctx.attr_ints("axes")) axes.push_back(normalize_axis(a, rank));
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  const size_t na = axes.size();
  const std::string policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
  ctx.check(policy == "stretch" || policy == "not_larger" || policy == "not_smaller",
            "keep_aspect_ratio_policy must be stretch, not_larger or not_smaller");
  std::vector<double> scales(static_cast<size_t>(rank), 1.0);
  std::vector<double> roi(static_cast<size_t>(2 * rank), 0.0);
  for (int64_t d = 0; d < rank; ++d) roi[static_cast<size_t>(d + rank)] = 1.0;
  Dims out = x.dims();
  const Tensor* roi_t = present(ctx, 1);
  if (roi_t && p.ctm == "tf_crop_and_resize") {
    ctx.check(roi_t->numel() == static_cast<int64_t>(2 * na), "roi must have 2 values per axis");
    const std::vector<double> r = to_f64(*roi_t);
    for (size_t i = 0; i < na; ++i) {
      roi[static_cast<size_t>(axes[i])] = r[i];
      roi[static_cast<size_t>(axes[i] + rank)] = r[i + na];
    }
  }
  const Tensor* scales_t = present(ctx, 2);
  const Tensor* sizes_t = present(ctx, 3);
  ctx.check((scales_t == nullptr) != (sizes_t == nullptr),
            "exactly one of scales and sizes must be given");
  if (scales_t) {
    ctx.check(scales_t->numel() == static_cast<int64_t>(na),
              "scales must have one value per resized axis");
    const std::vector<double> s = to_f64(*scales_t);
    check_scales(ctx, s);
    for (size_t i = 0; i < na; ++i) {
      const size_t ax = static_cast<size_t>(axes[i]);
      scales[ax] = s[i];
      double len = static_cast<double>(x.dims()[ax]) * s[i];
      if (p.ctm == "tf_crop_and_resize") len *= roi[ax + static_cast<size_t>(rank)] - roi[ax];
      out[ax] = static_cast<int64_t>(std::floor(len));
    }
  } else {
    const std::vector<int64_t> sz = sizes_t->to_i64_vector();
    ctx.check(sz.size() == na, "sizes must have one value per resized axis");
    for (int64_t v : sz) ctx.check(v >= 0, "sizes must be non-negative");
    if (policy == "stretch") {
      for (size_t i = 0; i < na; ++i) {
        const size_t ax = static_cast<size_t>(axes[i]);
        out[ax] = sz[i];
        scales[ax] = static_cast<double>(sz[i]) / static_cast<double>(x.dims()[ax]);
      }
    } else {
      double s = policy == "not_larger" ? INFINITY : -INFINITY;
      for (size_t i = 0; i < na; ++i) {
        const double r = static_cast<double>(sz[i]) /
                         static_cast<double>(x.dims()[static_cast<size_t>(axes[i])]);
        s = policy == "not_larger" ? std::min(s, r) : std::max(s, r);
      }
      for (size_t i = 0; i < na; ++i) {
        const size_t ax = static_cast<size_t>(axes[i]);
        scales[ax] = s;
        out[ax] = static_cast<int64_t>(std::round(s * static_cast<double>(x.dims()[ax])));
      }
    }
  }
  ctx.set_output(0, resize_tensor(ctx, x, p, out, scales, roi));
}

void upsample(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  Params p;
  p.mode = ctx.attr_string("mode", "nearest");
  if (p.mode == "bilinear") p.mode = "linear";
  ctx.check(p.mode == "nearest" || p.mode == "linear", "mode must be nearest or linear");
  p.ctm = "asymmetric";
  p.nearest_mode = "floor";
  std::vector<double> scales;
  if (ctx.opset() >= 9) {
    scales = to_f64(ctx.input(1));
  } else if (ctx.opset() >= 7) {
    for (float f : ctx.attr_floats("scales")) scales.push_back(f);
  } else {
    ctx.check(rank == 4, "Upsample-1 expects a 4-D input");
    scales = {1.0, 1.0, ctx.attr_float("height_scale", 1.0f), ctx.attr_float("width_scale", 1.0f)};
  }
  ctx.check(static_cast<int64_t>(scales.size()) == rank, "scales must have one value per dim");
  check_scales(ctx, scales);
  Dims out(static_cast<size_t>(rank));
  for (size_t d = 0; d < out.size(); ++d)
    out[d] = static_cast<int64_t>(std::floor(static_cast<double>(x.dims()[d]) * scales[d]));
  std::vector<double> roi(static_cast<size_t>(2 * rank), 0.0);
  ctx.set_output(0, resize_tensor(ctx, x, p, out, scales, roi));
}

}  // namespace

KPT_REGISTER_OP("", "Resize", 1, resize);
KPT_REGISTER_OP("", "Upsample", 1, upsample);

}  // namespace kpt::ops::vision
