// HannWindow, HammingWindow, BlackmanWindow and MelWeightMatrix.
#include <cmath>
#include <numbers>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

DType output_type(const KernelContext& ctx) {
  const int64_t code = ctx.attr_int("output_datatype", 1);
  if (!is_valid_dtype(static_cast<int32_t>(code)))
    ctx.fail("output_datatype " + std::to_string(code) + " is not a valid element type");
  const DType t = static_cast<DType>(code);
  if (!is_float(t) && !is_integer(t))
    ctx.unsupported("output_datatype " + std::string(dtype_name(t)));
  return t;
}

template <typename F>
void window(KernelContext& ctx, F f) {
  const int64_t size = ctx.input(0).get_i64(0);
  ctx.check(size >= 0 && size <= (int64_t{1} << 31), "size must be non-negative and sane");
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  const double n = static_cast<double>(periodic ? size : size - 1);
  std::vector<double> y(static_cast<size_t>(size));
  // A one-point symmetric window has no period; numpy's windows give [1] there.
  for (int64_t i = 0; i < size; ++i)
    y[static_cast<size_t>(i)] = n == 0 ? 1.0 : f(2 * std::numbers::pi * static_cast<double>(i) / n);
  ctx.set_output(0, from_f64(y, {size}, output_type(ctx)));
}

void hann(KernelContext& ctx) {
  window(ctx, [](double a) { return 0.5 - 0.5 * std::cos(a); });
}
void hamming(KernelContext& ctx) {
  window(ctx, [](double a) { return 25.0 / 46.0 - (1 - 25.0 / 46.0) * std::cos(a); });
}
void blackman(KernelContext& ctx) {
  window(ctx, [](double a) { return 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a); });
}

void mel_weight_matrix(KernelContext& ctx) {
  const int64_t mels = ctx.input(0).get_i64(0);
  const int64_t dft_len = ctx.input(1).get_i64(0);
  const int64_t rate = ctx.input(2).get_i64(0);
  const double lo = ctx.input(3).get_f64(0), hi = ctx.input(4).get_f64(0);
  ctx.check(mels >= 1 && dft_len >= 1 && rate >= 1,
            "num_mel_bins, dft_length and sample_rate must be positive");
  ctx.check(mels < (int64_t{1} << 20) && dft_len < (int64_t{1} << 24), "sizes too large");
  const int64_t bins = dft_len / 2 + 1;
  auto to_mel = [](double hz) { return 2595.0 * std::log10(1 + hz / 700.0); };
  const double lo_mel = to_mel(lo), hi_mel = to_mel(hi);
  const double step = (hi_mel - lo_mel) / static_cast<double>(mels + 2);
  std::vector<int64_t> f(static_cast<size_t>(mels + 2));
  for (int64_t i = 0; i < mels + 2; ++i) {
    const double hz =
        700.0 * (std::pow(10.0, (static_cast<double>(i) * step + lo_mel) / 2595.0) - 1);
    f[static_cast<size_t>(i)] = static_cast<int64_t>(
        std::floor(static_cast<double>(dft_len + 1) * hz / static_cast<double>(rate)));
  }
  std::vector<double> y(static_cast<size_t>(bins * mels), 0.0);
  auto set = [&](int64_t row, int64_t col, double v) {
    ctx.check(row >= 0 && row < bins, "mel band edge falls outside the spectrogram bins");
    y[static_cast<size_t>(row * mels + col)] = v;
  };
  for (int64_t i = 0; i < mels; ++i) {
    const int64_t l = f[static_cast<size_t>(i)], c = f[static_cast<size_t>(i + 1)],
                  h = f[static_cast<size_t>(i + 2)];
    if (c == l) {
      set(c, i, 1.0);
    } else {
      for (int64_t j = l; j <= c; ++j)
        set(j, i, static_cast<double>(j - l) / static_cast<double>(c - l));
    }
    if (h > c)
      for (int64_t j = c; j < h; ++j)
        set(j, i, static_cast<double>(h - j) / static_cast<double>(h - c));
  }
  ctx.set_output(0, from_f64(y, {bins, mels}, output_type(ctx)));
}

}  // namespace

KPT_REGISTER_OP("", "HannWindow", 1, hann);
KPT_REGISTER_OP("", "HammingWindow", 1, hamming);
KPT_REGISTER_OP("", "BlackmanWindow", 1, blackman);
KPT_REGISTER_OP("", "MelWeightMatrix", 1, mel_weight_matrix);

}  // namespace kpt::ops::vision
