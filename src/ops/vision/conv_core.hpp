#pragma once
// Direct N-D convolution shared by Conv, ConvInteger and QLinearConv.
#include <vector>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {

// x: N x C x in..., w: M x C/group x kernel...; returns N x M x win.out... (row-major).
inline std::vector<double> conv_core(const std::vector<double>& x, const Dims& xd,
                                     const std::vector<double>& w, const Dims& wd, int64_t group,
                                     const Window& win) {
  const int64_t n_batch = xd[0], c_in = xd[1], m_out = wd[0];
  const int64_t cg = c_in / group, mg = m_out / group;
  const int64_t in_sp = product(win.in), out_sp = product(win.out), k_sp = product(win.kernel);
  const size_t r = win.in.size();
  // For each output position, the (kernel offset, input offset) pairs that land inside.
  std::vector<int64_t> start(static_cast<size_t>(out_sp) + 1, 0);
  std::vector<std::pair<int64_t, int64_t>> taps;
  std::vector<int64_t> oc, kc;
  for (int64_t o = 0; o < out_sp; ++o) {
    unravel(o, win.out, oc);
    for (int64_t k = 0; k < k_sp; ++k) {
      unravel(k, win.kernel, kc);
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < r; ++d) {
        const int64_t pos = oc[d] * win.strides[d] - win.pads[d] + kc[d] * win.dilations[d];
        if (pos < 0 || pos >= win.in[d]) {
          inside = false;
          break;
        }
        off = off * win.in[d] + pos;
      }
      if (inside) taps.emplace_back(k, off);
    }
    start[static_cast<size_t>(o) + 1] = static_cast<int64_t>(taps.size());
  }
  std::vector<double> y(static_cast<size_t>(n_batch * m_out * out_sp), 0.0);
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t m = 0; m < m_out; ++m) {
      const int64_t g = m / mg;
      double* yo = &y[static_cast<size_t>((n * m_out + m) * out_sp)];
      for (int64_t c = 0; c < cg; ++c) {
        const double* xc = x.data() + ((n * c_in + g * cg + c) * in_sp);
        const double* wc = w.data() + ((m * cg + c) * k_sp);
        for (int64_t o = 0; o < out_sp; ++o) {
          double acc = 0;
          for (int64_t t = start[static_cast<size_t>(o)]; t < start[static_cast<size_t>(o) + 1];
               ++t)
            acc += xc[taps[static_cast<size_t>(t)].second] * wc[taps[static_cast<size_t>(t)].first];
          yo[o] += acc;
        }
      }
    }
  return y;
}

// Adds b[channel] to y of dims N x M x spatial...
inline void add_bias(std::vector<double>& y, const std::vector<double>& b, const Dims& yd) {
  const int64_t m = yd[1];
  const int64_t per = product(Dims(yd.begin() + 2, yd.end()));
  for (size_t i = 0; i < y.size(); ++i)
    y[i] += b[static_cast<size_t>((static_cast<int64_t>(i) / per) % m)];
}

}  // namespace kpt::ops::vision
