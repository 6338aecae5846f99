#pragma once
// The parts RNN, LSTM and GRU share: attribute parsing (direction, layout, activations with
// their alpha/beta), input checking, and the time loop over directions, batches and
// sequence_lens. Everything is computed in double and cast to the input type once.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/cast.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::control {

struct Activation {
  std::string name;
  double alpha = 0, beta = 0;
  double operator()(double x) const {
    if (name == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
    if (name == "Tanh") return std::tanh(x);
    if (name == "Relu") return std::max(0.0, x);
    if (name == "Affine") return alpha * x + beta;
    if (name == "LeakyRelu") return x >= 0 ? x : alpha * x;
    if (name == "ThresholdedRelu") return x > alpha ? x : 0.0;
    if (name == "ScaledTanh") return alpha * std::tanh(beta * x);
    if (name == "HardSigmoid") return std::clamp(alpha * x + beta, 0.0, 1.0);
    if (name == "Elu") return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
    if (name == "Softsign") return x / (1.0 + std::fabs(x));
    if (name == "Softplus") return std::log1p(std::exp(x));
    return x;
  }
};

inline bool known_activation(const std::string& n) {
  static const char* names[] = {
      "Sigmoid",    "Tanh",        "Relu", "Affine",   "LeakyRelu", "ThresholdedRelu",
      "ScaledTanh", "HardSigmoid", "Elu",  "Softsign", "Softplus"};
  for (const char* k : names)
    if (n == k) return true;
  return false;
}

// `per_dir` activations for each direction (defaults repeated when the attribute is absent);
// alpha/beta lists are consumed in order by the activations that take them.
inline std::vector<Activation> parse_activations(const KernelContext& ctx, int num_dir,
                                                 const std::vector<std::string>& defaults) {
  std::vector<std::string> names = ctx.node().attr_strings("activations");
  const size_t per_dir = defaults.size();
  if (names.empty()) {
    for (int d = 0; d < num_dir; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() == per_dir && num_dir == 2) {
    std::vector<std::string> twice = names;
    names.insert(names.end(), twice.begin(), twice.end());
  }
  ctx.check(names.size() == per_dir * static_cast<size_t>(num_dir),
            "expected " + std::to_string(per_dir * static_cast<size_t>(num_dir)) +
                " activations, got " + std::to_string(names.size()));
  const std::vector<float> alphas = ctx.attr_floats("activation_alpha");
  const std::vector<float> betas = ctx.attr_floats("activation_beta");
  size_t ia = 0, ib = 0;
  std::vector<Activation> acts;
  for (const auto& n : names) {
    if (!known_activation(n)) ctx.unsupported("activation '" + n + "' is not supported");
    Activation a{n};
    auto take = [](const std::vector<float>& v, size_t& i, double dflt) {
      return i < v.size() ? static_cast<double>(v[i++]) : dflt;
    };
    if (n == "Affine") {
      a.alpha = take(alphas, ia, 1.0);
      a.beta = take(betas, ib, 0.0);
    } else if (n == "LeakyRelu") {
      a.alpha = take(alphas, ia, 0.01);
    } else if (n == "ThresholdedRelu" || n == "Elu") {
      a.alpha = take(alphas, ia, 1.0);
    } else if (n == "ScaledTanh") {
      a.alpha = take(alphas, ia, 1.0);
      a.beta = take(betas, ib, 1.0);
    } else if (n == "HardSigmoid") {
      a.alpha = take(alphas, ia, 0.2);
      a.beta = take(betas, ib, 0.5);
    }
    acts.push_back(a);
  }
  return acts;
}

inline std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.get_f64(i);
  return v;
}

// Dims, options and inputs common to the three ops, with X re-laid out as [seq, batch, input]
// and initial states as [dir, batch, hidden].
struct Recurrent {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  int num_dir = 1;
  bool reverse_only = false;
  int64_t layout = 0;
  DType dtype = DType::F32;
  double clip = 0;  // 0: no clipping
  std::vector<double> x, w, r;
  std::vector<int64_t> lens;

  double clipped(double v) const { return clip > 0 ? std::clamp(v, -clip, clip) : v; }
  size_t xi(int64_t t, int64_t b, int64_t k) const {
    return static_cast<size_t>((t * batch + b) * input + k);
  }
};

// Reads X, W, R, sequence_lens (input 4) and checks their dims; `gates` is 1, 3 or 4.
inline Recurrent setup(const KernelContext& ctx, int64_t gates) {
  Recurrent s;
  const std::string dir = ctx.attr_string("direction", "forward");
  if (dir == "bidirectional") {
    s.num_dir = 2;
  } else if (dir == "reverse") {
    s.reverse_only = true;
  } else if (dir != "forward") {
    ctx.fail("direction must be forward, reverse or bidirectional, got '" + dir + "'");
  }
  s.layout = ctx.opset() >= 14 ? ctx.attr_int("layout", 0) : 0;
  ctx.check(s.layout == 0 || s.layout == 1, "layout must be 0 or 1");
  if (ctx.node().has_attr("clip")) {
    s.clip = ctx.attr_float("clip", 0);
    ctx.check(s.clip > 0, "clip must be positive");
  }
  const Tensor& X = ctx.input(0);
  const Tensor& W = ctx.input(1);
  const Tensor& R = ctx.input(2);
  ctx.check(is_float(X.dtype()), "X must be a float tensor, got " + X.describe());
  s.dtype = X.dtype();
  ctx.check(X.rank() == 3, "X must be 3-D, got " + X.describe());
  s.seq = X.dims()[s.layout ? 1 : 0];
  s.batch = X.dims()[s.layout ? 0 : 1];
  s.input = X.dims()[2];
  ctx.check(W.rank() == 3 && W.dims()[0] == s.num_dir && W.dims()[2] == s.input &&
                W.dims()[1] % gates == 0,
            "W must be [num_directions, " + std::to_string(gates) + "*hidden, input], got " +
                W.describe());
  s.hidden = W.dims()[1] / gates;
  if (ctx.node().has_attr("hidden_size"))
    ctx.check(ctx.attr_int("hidden_size", 0) == s.hidden,
              "hidden_size does not match W " + W.describe());
  ctx.check(R.rank() == 3 && R.dims()[0] == s.num_dir && R.dims()[1] == gates * s.hidden &&
                R.dims()[2] == s.hidden,
            "R must be [num_directions, " + std::to_string(gates) + "*hidden, hidden], got " +
                R.describe());
  const std::vector<double> xr = to_doubles(X);
  s.x.resize(xr.size());
  for (int64_t t = 0; t < s.seq; ++t)
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t k = 0; k < s.input; ++k) {
        const int64_t src =
            s.layout ? (b * s.seq + t) * s.input + k : (t * s.batch + b) * s.input + k;
        s.x[s.xi(t, b, k)] = xr[static_cast<size_t>(src)];
      }
  s.w = to_doubles(W);
  s.r = to_doubles(R);
  s.lens.assign(static_cast<size_t>(s.batch), s.seq);
  if (ctx.has_input(4)) {
    const Tensor& L = ctx.input(4);
    ctx.check(L.numel() == s.batch,
              "sequence_lens must have batch_size entries, got " + L.describe());
    s.lens = L.to_i64_vector();
    for (auto l : s.lens)
      ctx.check(l >= 0 && l <= s.seq, "sequence length " + std::to_string(l) + " is outside [0, " +
                                          std::to_string(s.seq) + "]");
  }
  return s;
}

// Optional bias of [dir, width] (zeros when absent).
inline std::vector<double> read_optional(const KernelContext& ctx, size_t i, int64_t rows,
                                         int64_t width, const std::string& what) {
  if (!ctx.has_input(i)) return std::vector<double>(static_cast<size_t>(rows * width), 0.0);
  const Tensor& t = ctx.input(i);
  ctx.check(t.numel() == rows * width, what + " must have " + std::to_string(rows) + "x" +
                                           std::to_string(width) + " elements, got " +
                                           t.describe());
  return to_doubles(t);
}

// An initial state input [dir, batch, hidden] (layout 1: [batch, dir, hidden]) returned as
// [dir, batch, hidden].
inline std::vector<double> read_state(const KernelContext& ctx, size_t i, const Recurrent& s,
                                      const std::string& what) {
  const int64_t n = s.num_dir * s.batch * s.hidden;
  if (!ctx.has_input(i)) return std::vector<double>(static_cast<size_t>(n), 0.0);
  const Tensor& t = ctx.input(i);
  ctx.check(t.numel() == n && t.rank() == 3,
            what + " must be 3-D with " + std::to_string(n) + " elements, got " + t.describe());
  const std::vector<double> raw = to_doubles(t);
  if (!s.layout) return raw;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t d = 0; d < s.num_dir; ++d)
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.hidden; ++h)
        v[static_cast<size_t>((d * s.batch + b) * s.hidden + h)] =
            raw[static_cast<size_t>((b * s.num_dir + d) * s.hidden + h)];
  return v;
}

// One time step for one direction and batch row: x (input values), h and c (updated in place).
using Cell =
    std::function<void(int dir, const double* x, std::vector<double>& h, std::vector<double>& c)>;

// Runs the cell over time for every direction and batch row, honouring sequence_lens, and
// sets outputs Y (0), Y_h (1) and, when `with_c`, Y_c (2).
inline void run_recurrent(KernelContext& ctx, const Recurrent& s, const std::vector<double>& h0,
                          const std::vector<double>& c0, bool with_c, const Cell& cell) {
  const int64_t H = s.hidden;
  std::vector<double> y(static_cast<size_t>(s.seq * s.num_dir * s.batch * H), 0.0);
  std::vector<double> yh(static_cast<size_t>(s.num_dir * s.batch * H), 0.0);
  std::vector<double> yc(yh.size(), 0.0);
  for (int d = 0; d < s.num_dir; ++d) {
    const bool reverse = s.reverse_only || d == 1;
    for (int64_t b = 0; b < s.batch; ++b) {
      const size_t off = static_cast<size_t>((d * s.batch + b) * H);
      std::vector<double> h(h0.begin() + static_cast<std::ptrdiff_t>(off),
                            h0.begin() + static_cast<std::ptrdiff_t>(off + H));
      std::vector<double> c(c0.begin() + static_cast<std::ptrdiff_t>(off),
                            c0.begin() + static_cast<std::ptrdiff_t>(off + H));
      const int64_t len = s.lens[static_cast<size_t>(b)];
      for (int64_t step = 0; step < len; ++step) {
        const int64_t t = reverse ? len - 1 - step : step;
        cell(d, &s.x[s.xi(t, b, 0)], h, c);
        for (int64_t k = 0; k < H; ++k)
          y[static_cast<size_t>(((t * s.num_dir + d) * s.batch + b) * H + k)] =
              h[static_cast<size_t>(k)];
      }
      for (int64_t k = 0; k < H; ++k) {
        yh[off + static_cast<size_t>(k)] = h[static_cast<size_t>(k)];
        yc[off + static_cast<size_t>(k)] = c[static_cast<size_t>(k)];
      }
    }
  }
  auto emit = [&](size_t idx, const std::vector<double>& v, Dims dims) {
    if (!ctx.wants_output(idx)) return;
    Tensor t(DType::F64, dims);
    std::copy(v.begin(), v.end(), t.data<double>());
    ctx.set_output(idx, cast_tensor(t, s.dtype));
  };
  const int64_t D = s.num_dir;
  if (!s.layout) {
    emit(0, y, {s.seq, D, s.batch, H});
    emit(1, yh, {D, s.batch, H});
    if (with_c) emit(2, yc, {D, s.batch, H});
    return;
  }
  // layout 1: Y is [batch, seq, dir, hidden], states [batch, dir, hidden].
  std::vector<double> y1(y.size()), yh1(yh.size()), yc1(yc.size());
  for (int64_t t = 0; t < s.seq; ++t)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t k = 0; k < H; ++k)
          y1[static_cast<size_t>(((b * s.seq + t) * D + d) * H + k)] =
              y[static_cast<size_t>(((t * D + d) * s.batch + b) * H + k)];
  for (int64_t d = 0; d < D; ++d)
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t k = 0; k < H; ++k) {
        yh1[static_cast<size_t>((b * D + d) * H + k)] =
            yh[static_cast<size_t>((d * s.batch + b) * H + k)];
        yc1[static_cast<size_t>((b * D + d) * H + k)] =
            yc[static_cast<size_t>((d * s.batch + b) * H + k)];
      }
  emit(0, y1, {s.batch, s.seq, D, H});
  emit(1, yh1, {s.batch, D, H});
  if (with_c) emit(2, yc1, {s.batch, D, H});
}

// dot(row `row` of a [rows, n] block starting at `m`, v) for n entries.
inline double dot_row(const double* m, int64_t row, int64_t n, const double* v) {
  double acc = 0;
  for (int64_t k = 0; k < n; ++k) acc += m[row * n + k] * v[k];
  return acc;
}

}  // namespace kpt::ops::control
