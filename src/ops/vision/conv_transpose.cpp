// ConvTranspose: scatters every input element through the kernel into the output.
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void conv_transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  require_float(ctx, x, "ConvTranspose input");
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  ctx.check(w.rank() == x.rank(),
            [&] { return "weight rank must equal input rank, got " + w.describe(); });
  const size_t r = x.rank() - 2;
  const int64_t group = ctx.attr_int("group", 1);
  ctx.check(group >= 1, "group must be positive");
  const int64_t c_in = x.dim(1);
  ctx.check(w.dim(0) == c_in, "weight dim 0 must equal input channels");
  ctx.check(c_in % group == 0, "input channels must be divisible by group");
  const int64_t mg = w.dim(1), m_out = mg * group, cg = c_in / group;
  std::vector<int64_t> kernel(w.dims().begin() + 2, w.dims().end());
  if (ctx.node().has_attr("kernel_shape")) {
    ctx.check(ctx.attr_ints("kernel_shape") == kernel,
              "kernel_shape does not match the weight's spatial dims");
  }
  auto strides = ctx.attr_ints("strides", std::vector<int64_t>(r, 1));
  auto dil = ctx.attr_ints("dilations", std::vector<int64_t>(r, 1));
  auto out_pad = ctx.attr_ints("output_padding", std::vector<int64_t>(r, 0));
  auto pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  auto out_shape = ctx.attr_ints("output_shape");
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  ctx.check(strides.size() == r && dil.size() == r && out_pad.size() == r && pads.size() == 2 * r,
            "strides, dilations, output_padding and pads must match the spatial rank");
  if (out_shape.size() == r + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  ctx.check(out_shape.empty() || out_shape.size() == r,
            "output_shape must have one value per spatial dim");
  Dims in(x.dims().begin() + 2, x.dims().end());
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (out_shape.empty() && same) {
    for (size_t i = 0; i < r; ++i) out_shape.push_back(in[i] * strides[i]);
  }
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t full = strides[i] * (in[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1;
    if (!out_shape.empty()) {
      // Floor division, as the reference does: a negative total (an output larger than the
      // full result) pads at the end.
      const int64_t total = full - out_shape[i];
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      if (auto_pad == "SAME_UPPER") {
        pads[i] = half;
        pads[i + r] = total - half;
      } else {
        pads[i] = total - half;
        pads[i + r] = half;
      }
      out[i] = out_shape[i];
    } else {
      if (auto_pad == "VALID") pads[i] = pads[i + r] = 0;
      out[i] = full - pads[i] - pads[i + r];
    }
    ctx.check(out[i] >= 0, "computed output dim is negative");
  }
  const std::vector<double> xv = to_f64(x), wv = to_f64(w);
  const int64_t n_batch = x.dim(0);
  const int64_t in_sp = product(in), out_sp = product(out), k_sp = product(kernel);
  Dims y_dims = {n_batch, m_out};
  y_dims.insert(y_dims.end(), out.begin(), out.end());
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)), 0.0);
  // For each input position, the (kernel offset, output offset) pairs that land inside.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> taps(static_cast<size_t>(in_sp));
  std::vector<int64_t> ic, kc;
  for (int64_t p = 0; p < in_sp; ++p) {
    unravel(p, in, ic);
    for (int64_t k = 0; k < k_sp; ++k) {
      unravel(k, kernel, kc);
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < r && inside; ++d) {
        const int64_t pos = ic[d] * strides[d] - pads[d] + kc[d] * dil[d];
        inside = pos >= 0 && pos < out[d];
        off = off * out[d] + pos;
      }
      if (inside) taps[static_cast<size_t>(p)].emplace_back(k, off);
    }
  }
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t c = 0; c < c_in; ++c) {
      const int64_t g = c / cg;
      const double* xc = xv.data() + (n * c_in + c) * in_sp;
      for (int64_t ml = 0; ml < mg; ++ml) {
        const double* wk = wv.data() + (c * mg + ml) * k_sp;
        double* yo = y.data() + (n * m_out + g * mg + ml) * out_sp;
        for (int64_t p = 0; p < in_sp; ++p)
          for (const auto& [k, off] : taps[static_cast<size_t>(p)]) yo[off] += xc[p] * wk[k];
      }
    }
  if (ctx.has_input(2)) {
    const std::vector<double> b = to_f64(ctx.input(2));
    ctx.check(static_cast<int64_t>(b.size()) == m_out,
              "bias must have one value per output channel");
    for (size_t i = 0; i < y.size(); ++i)
      y[i] +=
          b[static_cast<size_t>((static_cast<int64_t>(i) / std::max<int64_t>(out_sp, 1)) % m_out)];
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "ConvTranspose", 1, conv_transpose);

}  // namespace kpt::ops::vision
