// CausalConvWithState (opset 27): depthwise 1-D causal convolution over [batch, channels, seq]
// whose left context comes from past_state (zeros when absent); returns the last kernel-1
// inputs as present_state so decoding can continue step by step.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

void causal_conv_with_state(KernelContext& ctx) {
  const Tensor& x_t = ctx.input(0);
  const Tensor& w_t = ctx.input(1);
  const DType t = x_t.dtype();
  ctx.check(is_float(t), [&] { return "input must be a float tensor, got " + x_t.describe(); });
  ctx.check(x_t.rank() == 3,
            [&] { return "input must be [batch, channels, seq], got " + x_t.describe(); });
  const int64_t B = x_t.dim(0), C = x_t.dim(1), L = x_t.dim(2);
  ctx.check(w_t.rank() == 3 && w_t.dim(0) == C && w_t.dim(1) == 1 && w_t.dim(2) >= 1, [&] {
    return "weight must be [channels, 1, kernel] with channels " + std::to_string(C) + ", got " +
           w_t.describe();
  });
  const int64_t K = w_t.dim(2), P = K - 1;
  std::vector<double> bias(static_cast<size_t>(C), 0.0);
  if (ctx.has_input(2)) {
    const Tensor& b = ctx.input(2);
    ctx.check(b.rank() == 1 && b.dim(0) == C, [&] {
      return "bias must be 1-D of size " + std::to_string(C) + ", got " + b.describe();
    });
    bias = to_f64(b);
  }
  std::vector<double> past(static_cast<size_t>(B * C * P), 0.0);
  if (ctx.has_input(3)) {
    const Tensor& p = ctx.input(3);
    ctx.check(p.dims() == Dims{B, C, P}, [&] {
      return "past_state must be [" + std::to_string(B) + "," + std::to_string(C) + "," +
             std::to_string(P) + "], got " + p.describe();
    });
    past = to_f64(p);
  }
  const std::string act = ctx.attr_string("activation", "none");
  const bool silu = act == "silu" || act == "swish";
  if (!silu && act != "none" && !act.empty())
    ctx.unsupported("activation \"" + act + "\" (expected none, silu or swish)");
  const std::vector<double> x = to_f64(x_t), w = to_f64(w_t);
  std::vector<double> y(x.size()), state(past.size());
  std::vector<double> padded(static_cast<size_t>(P + L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t bc = b * C + c;
      for (int64_t i = 0; i < P; ++i)
        padded[static_cast<size_t>(i)] = past[static_cast<size_t>(bc * P + i)];
      for (int64_t i = 0; i < L; ++i)
        padded[static_cast<size_t>(P + i)] = x[static_cast<size_t>(bc * L + i)];
      for (int64_t i = 0; i < L; ++i) {
        double acc = bias[static_cast<size_t>(c)];
        for (int64_t k = 0; k < K; ++k)
          acc += w[static_cast<size_t>(c * K + k)] * padded[static_cast<size_t>(i + k)];
        if (silu) {
          acc = round_to(t, acc);  // the conv result is rounded before the activation
          acc = acc / (1.0 + std::exp(-acc));
        }
        y[static_cast<size_t>(bc * L + i)] = acc;
      }
      for (int64_t i = 0; i < P; ++i)
        state[static_cast<size_t>(bc * P + i)] = padded[static_cast<size_t>(L + i)];
    }
  ctx.set_output(0, from_f64(y, x_t.dims(), t));
  ctx.set_output(1, from_f64(state, {B, C, P}, t));
}

}  // namespace

KPT_REGISTER_OP("", "CausalConvWithState", 1, causal_conv_with_state);

}  // namespace kpt::ops::nn
