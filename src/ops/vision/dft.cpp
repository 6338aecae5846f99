// DFT (opsets 17 and 20) and STFT: direct transforms in double. Twiddle angles reduce k*j
// modulo n first so long transforms keep full accuracy.
#include <cmath>
#include <complex>
#include <numbers>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

using cd = std::complex<double>;

// out[k] = sum_j in[j] * exp(sign * 2*pi*i*j*k/n) for k < out.size().
void direct_dft(const std::vector<cd>& in, std::vector<cd>& out, int64_t n, double sign) {
  for (size_t k = 0; k < out.size(); ++k) {
    cd acc = 0;
    for (size_t j = 0; j < in.size(); ++j) {
      const int64_t m = static_cast<int64_t>((k * j) % static_cast<size_t>(n));
      const double ang =
          sign * 2.0 * std::numbers::pi * static_cast<double>(m) / static_cast<double>(n);
      acc += in[j] * cd(std::cos(ang), std::sin(ang));
    }
    out[k] = acc;
  }
}

void dft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "DFT input");
  const int64_t rank = static_cast<int64_t>(x.rank());
  ctx.check(rank >= 2 && (x.dim(-1) == 1 || x.dim(-1) == 2),
            [&] { return "input must be [batch, signal..., 1 or 2], got " + x.describe(); });
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  int64_t axis;
  if (ctx.opset() >= 20) {
    axis = ctx.has_input(2) && ctx.input(2).numel() > 0 ? ctx.input(2).get_i64(0) : -2;
  } else {
    axis = ctx.attr_int("axis", 1);
  }
  axis = normalize_axis(axis, rank);
  ctx.check(axis >= 1 && axis <= rank - 2,
            "axis must name a signal dimension (not the batch or the complex dimension)");
  const int64_t len = x.dim(axis);
  const bool complex_in = x.dim(-1) == 2;
  int64_t n = inverse && onesided ? 2 * (len - 1) : len;
  if (ctx.has_input(1) && ctx.input(1).numel() > 0) n = ctx.input(1).get_i64(0);
  ctx.check(n >= 1, "dft_length must be positive");
  // Inverse onesided: the input holds the first n/2+1 bins of a Hermitian spectrum and the
  // output is real.
  const bool real_out = inverse && onesided;
  const int64_t out_len = real_out ? n : onesided ? n / 2 + 1 : n;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dims()[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < rank - 1; ++d) inner *= x.dims()[static_cast<size_t>(d)];
  const int64_t cin = complex_in ? 2 : 1, cout = real_out ? 1 : 2;
  Dims y_dims = x.dims();
  y_dims[static_cast<size_t>(axis)] = out_len;
  y_dims.back() = cout;
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)));
  std::vector<cd> sig(static_cast<size_t>(n)), res;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::fill(sig.begin(), sig.end(), cd(0, 0));
      auto at = [&](int64_t k) {
        const size_t b = static_cast<size_t>(((o * len + k) * inner + i) * cin);
        return cd(xv[b], complex_in ? xv[b + 1] : 0.0);
      };
      if (real_out) {
        const int64_t have = std::min(len, n / 2 + 1);
        for (int64_t k = 0; k < have; ++k) sig[static_cast<size_t>(k)] = at(k);
        for (int64_t k = 1; k < have; ++k)
          if (n - k >= have) sig[static_cast<size_t>(n - k)] = std::conj(at(k));
      } else {
        for (int64_t k = 0; k < std::min(len, n); ++k) sig[static_cast<size_t>(k)] = at(k);
      }
      res.assign(static_cast<size_t>(out_len), cd(0, 0));
      direct_dft(sig, res, n, inverse ? 1.0 : -1.0);
      for (int64_t k = 0; k < out_len; ++k) {
        cd v = res[static_cast<size_t>(k)];
        if (inverse) v /= static_cast<double>(n);
        const size_t b = static_cast<size_t>(((o * out_len + k) * inner + i) * cout);
        y[b] = v.real();
        if (cout == 2) y[b + 1] = v.imag();
      }
    }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

void stft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "STFT signal");
  ctx.check(x.rank() == 3 && (x.dim(2) == 1 || x.dim(2) == 2),
            [&] { return "signal must be [batch, length, 1 or 2], got " + x.describe(); });
  const int64_t step = ctx.input(1).get_i64(0);
  ctx.check(step >= 1, "frame_step must be positive");
  std::vector<double> window;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) window = to_f64(ctx.input(2));
  int64_t fl = static_cast<int64_t>(window.size());
  if (ctx.has_input(3) && ctx.input(3).numel() > 0) fl = ctx.input(3).get_i64(0);
  ctx.check(fl >= 1, "frame_length (or a window) must be given and positive");
  ctx.check(window.empty() || static_cast<int64_t>(window.size()) == fl,
            "window length must equal frame_length");
  if (window.empty()) window.assign(static_cast<size_t>(fl), 1.0);
  const int64_t batch = x.dim(0), len = x.dim(1), c = x.dim(2);
  ctx.check(len >= fl, "signal is shorter than one frame");
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t frames = (len - fl) / step + 1;
  const int64_t bins = onesided ? fl / 2 + 1 : fl;
  Dims y_dims = {batch, frames, bins, 2};
  const std::vector<double> xv = to_f64(x);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)));
  std::vector<cd> sig(static_cast<size_t>(fl)), res(static_cast<size_t>(bins));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t j = 0; j < fl; ++j) {
        const size_t at = static_cast<size_t>((b * len + f * step + j) * c);
        sig[static_cast<size_t>(j)] =
            cd(xv[at], c == 2 ? xv[at + 1] : 0.0) * window[static_cast<size_t>(j)];
      }
      direct_dft(sig, res, fl, -1.0);
      for (int64_t k = 0; k < bins; ++k) {
        const size_t at = static_cast<size_t>(((b * frames + f) * bins + k) * 2);
        y[at] = res[static_cast<size_t>(k)].real();
        y[at + 1] = res[static_cast<size_t>(k)].imag();
      }
    }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "DFT", 1, dft);
KPT_REGISTER_OP("", "STFT", 1, stft);

}  // namespace kpt::ops::vision
