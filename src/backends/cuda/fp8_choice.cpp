#include "backends/cuda/fp8_choice.hpp"

#include <algorithm>

namespace kpt::cuda {

Fp8Choice choose_fp8_by_gain(const std::vector<double>& harm,
                             const std::function<double(size_t)>& gain,
                             const std::function<void(size_t, bool)>& set,
                             const std::function<double()>& measure, double target) {
  enum class State { Open, Kept, Declined };
  const size_t n = harm.size();
  std::vector<State> state(n, State::Open);
  Fp8Choice result;
  for (;;) {
    size_t best = n;
    double best_ratio = 0.0, best_gain = 0.0;
    for (size_t i = 0; i < n; ++i) {
      if (state[i] != State::Open) continue;
      const double g = gain(i);
      if (g <= 0.0) continue;
      const double ratio = g / std::max(harm[i], 1e-12);
      if (best == n || ratio > best_ratio) {
        best = i;
        best_ratio = ratio;
        best_gain = g;
      }
    }
    if (best == n) return result;
    ++result.tried;
    set(best, true);
    const double c = measure();
    if (c >= target) {
      state[best] = State::Kept;
      ++result.kept;
      result.reached = c;
      result.gained += best_gain;
    } else {
      set(best, false);
      state[best] = State::Declined;
    }
  }
}

}  // namespace kpt::cuda
