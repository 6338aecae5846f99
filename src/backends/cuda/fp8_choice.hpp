#pragma once
// Which of a model's products run in FP8 when not all of them fit the accuracy budget: a
// greedy choice over measured harm and estimated gain, kept apart from the executor so that it
// is tested without a GPU (tests/unit/fp8_choice_test.cpp).
#include <cstddef>
#include <functional>
#include <vector>

namespace kpt::cuda {

struct Fp8Choice {
  size_t kept = 0;       // products left in FP8
  size_t tried = 0;      // products switched on and measured (tried - kept were declined)
  double reached = 1.0;  // the outputs' cosine after the last kept product
  double gained = 0.0;   // the kept products' gains, as estimated when each was tried
};

// Starting from every product off: while some product not yet tried has a positive
// `gain(i)` (asked again each step, since a product's gain can depend on the others' choices),
// switch on the one with the largest gain(i) / harm[i], run `measure()` (the outputs' cosine),
// and keep it if that is at least `target`, else switch it off again and never retry it.
// `set(i, on)` switches product i. harm[i] is the cosine loss with product i alone in FP8;
// harms at or under zero count as tiny, so those products go first.
Fp8Choice choose_fp8_by_gain(const std::vector<double>& harm,
                             const std::function<double(size_t)>& gain,
                             const std::function<void(size_t, bool)>& set,
                             const std::function<double()>& measure, double target);

}  // namespace kpt::cuda
