// RNN: Ht = f(Xt*W^T + Ht-1*R^T + Wb + Rb).
#include "ops/control/recurrent_util.hpp"

namespace kpt::ops {
namespace {

void rnn_kernel(KernelContext& ctx) {
  using namespace control;
  const Recurrent s = setup(ctx, 1);
  const int64_t H = s.hidden, I = s.input;
  const auto acts = parse_activations(ctx, s.num_dir, {"Tanh"});
  const auto bias = read_optional(ctx, 3, s.num_dir, 2 * H, "B");
  const auto h0 = read_state(ctx, 5, s, "initial_h");
  const std::vector<double> c0(h0.size(), 0.0);
  Cell cell = [&](int d, const double* x, std::vector<double>& h, std::vector<double>&) {
    const double* w = &s.w[static_cast<size_t>(d * H * I)];
    const double* r = &s.r[static_cast<size_t>(d * H * H)];
    const double* b = &bias[static_cast<size_t>(d * 2 * H)];
    std::vector<double> next(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) {
      const double pre = dot_row(w, j, I, x) + dot_row(r, j, H, h.data()) + b[j] + b[H + j];
      next[static_cast<size_t>(j)] = acts[static_cast<size_t>(d)](s.clipped(pre));
    }
    h = std::move(next);
  };
  run_recurrent(ctx, s, h0, c0, false, cell);
}

}  // namespace

KPT_REGISTER_OP("", "RNN", 1, rnn_kernel);

}  // namespace kpt::ops
