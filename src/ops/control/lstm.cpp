// LSTM with gate order i, o, f, c in W/R/B and peepholes P ordered i, o, f.
#include "ops/control/recurrent_util.hpp"

namespace kpt::ops {
namespace {

void lstm_kernel(KernelContext& ctx) {
  using namespace control;
  const Recurrent s = setup(ctx, 4);
  const int64_t H = s.hidden, I = s.input;
  const auto acts = parse_activations(ctx, s.num_dir, {"Sigmoid", "Tanh", "Tanh"});
  const auto bias = read_optional(ctx, 3, s.num_dir, 8 * H, "B");
  const auto h0 = read_state(ctx, 5, s, "initial_h");
  const auto c0 = read_state(ctx, 6, s, "initial_c");
  const auto peep = read_optional(ctx, 7, s.num_dir, 3 * H, "P");
  const bool input_forget = ctx.attr_int("input_forget", 0) != 0;
  Cell cell = [&](int d, const double* x, std::vector<double>& h, std::vector<double>& c) {
    const double* w = &s.w[static_cast<size_t>(d * 4 * H * I)];
    const double* r = &s.r[static_cast<size_t>(d * 4 * H * H)];
    const double* b = &bias[static_cast<size_t>(d * 8 * H)];
    const double* p = &peep[static_cast<size_t>(d * 3 * H)];
    const Activation& f = acts[static_cast<size_t>(d * 3)];
    const Activation& g = acts[static_cast<size_t>(d * 3 + 1)];
    const Activation& hact = acts[static_cast<size_t>(d * 3 + 2)];
    auto gate = [&](int64_t k, int64_t j) {
      const int64_t row = k * H + j;
      return dot_row(w, row, I, x) + dot_row(r, row, H, h.data()) + b[row] + b[4 * H + row];
    };
    std::vector<double> nh(static_cast<size_t>(H)), nc(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) {
      const double cp = c[static_cast<size_t>(j)];
      const double i = f(s.clipped(gate(0, j) + p[j] * cp));
      const double fg = input_forget ? 1.0 - i : f(s.clipped(gate(2, j) + p[2 * H + j] * cp));
      const double cc = g(s.clipped(gate(3, j)));
      const double ct = fg * cp + i * cc;
      const double o = f(s.clipped(gate(1, j) + p[H + j] * ct));
      nc[static_cast<size_t>(j)] = ct;
      nh[static_cast<size_t>(j)] = o * hact(ct);
    }
    h = std::move(nh);
    c = std::move(nc);
  };
  run_recurrent(ctx, s, h0, c0, true, cell);
}

}  // namespace

KPT_REGISTER_OP("", "LSTM", 1, lstm_kernel);

}  // namespace kpt::ops
