// GRU with gate order z, r, h in W/R/B; linear_before_reset applies the reset gate after
// multiplying by Rh.
#include "ops/control/recurrent_util.hpp"

namespace kpt::ops {
namespace {

void gru_kernel(KernelContext& ctx) {
  using namespace control;
  const Recurrent s = setup(ctx, 3);
  const int64_t H = s.hidden, I = s.input;
  const auto acts = parse_activations(ctx, s.num_dir, {"Sigmoid", "Tanh"});
  const auto bias = read_optional(ctx, 3, s.num_dir, 6 * H, "B");
  const auto h0 = read_state(ctx, 5, s, "initial_h");
  const std::vector<double> c0(h0.size(), 0.0);
  const bool lbr = ctx.attr_int("linear_before_reset", 0) != 0;
  Cell cell = [&](int d, const double* x, std::vector<double>& h, std::vector<double>&) {
    const double* w = &s.w[static_cast<size_t>(d * 3 * H * I)];
    const double* r = &s.r[static_cast<size_t>(d * 3 * H * H)];
    const double* b = &bias[static_cast<size_t>(d * 6 * H)];
    const Activation& f = acts[static_cast<size_t>(d * 2)];
    const Activation& g = acts[static_cast<size_t>(d * 2 + 1)];
    std::vector<double> z(static_cast<size_t>(H)), rg(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) {
      z[static_cast<size_t>(j)] =
          f(s.clipped(dot_row(w, j, I, x) + dot_row(r, j, H, h.data()) + b[j] + b[3 * H + j]));
      rg[static_cast<size_t>(j)] = f(s.clipped(
          dot_row(w, H + j, I, x) + dot_row(r, H + j, H, h.data()) + b[H + j] + b[4 * H + j]));
    }
    std::vector<double> rh(static_cast<size_t>(H));
    for (int64_t k = 0; k < H; ++k)
      rh[static_cast<size_t>(k)] = rg[static_cast<size_t>(k)] * h[static_cast<size_t>(k)];
    std::vector<double> nh(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) {
      const int64_t row = 2 * H + j;
      double pre = dot_row(w, row, I, x) + b[row];
      if (lbr) {
        pre += rg[static_cast<size_t>(j)] * (dot_row(r, row, H, h.data()) + b[3 * H + row]);
      } else {
        pre += dot_row(r, row, H, rh.data()) + b[3 * H + row];
      }
      const double ht = g(s.clipped(pre));
      const double zj = z[static_cast<size_t>(j)];
      nh[static_cast<size_t>(j)] = (1.0 - zj) * ht + zj * h[static_cast<size_t>(j)];
    }
    h = std::move(nh);
  };
  run_recurrent(ctx, s, h0, c0, false, cell);
}

}  // namespace

KPT_REGISTER_OP("", "GRU", 1, gru_kernel);

}  // namespace kpt::ops
