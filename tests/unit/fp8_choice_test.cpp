// The FP8 product choice (src/backends/cuda/fp8_choice.hpp) on a model of harms that add up,
// without a GPU: products are switched on by gain per unit of harm, kept only within the
// target, and a product whose gain depends on another's choice waits for it.
#include <gtest/gtest.h>

#if KPT_HAVE_CUDA

#include <cstddef>
#include <vector>

#include "backends/cuda/fp8_choice.hpp"

namespace kpt::cuda {
namespace {

// Products whose harms add up (the cosine is 1 minus the sum of the harms switched on), as the
// CPU simulation of BERT found them to; records the order in which products were switched on.
struct AdditiveModel {
  std::vector<double> harm;
  std::vector<bool> on;
  std::vector<size_t> switched_on;
  explicit AdditiveModel(std::vector<double> h) : harm(std::move(h)), on(harm.size(), false) {}
  void set(size_t i, bool v) {
    on[i] = v;
    if (v) switched_on.push_back(i);
  }
  double cosine() const {
    double c = 1.0;
    for (size_t i = 0; i < harm.size(); ++i)
      if (on[i]) c -= harm[i];
    return c;
  }
};

Fp8Choice choose(AdditiveModel& m, const std::vector<double>& gains, double target) {
  return choose_fp8_by_gain(
      m.harm, [&](size_t i) { return gains[i]; }, [&](size_t i, bool v) { m.set(i, v); },
      [&] { return m.cosine(); }, target);
}

TEST(Fp8Choice, LargestGainPerHarmFirstAndOnlyWithinTheTarget) {
  // Product 0: much gain, much harm; 1: little gain, little harm; 2: much gain, little harm.
  AdditiveModel m({4e-4, 1e-4, 1e-4});
  const Fp8Choice c = choose(m, {100.0, 1.0, 100.0}, 1.0 - 4.5e-4);
  // Ratios: 2 (1e6), then 0 (2.5e5), then 1 (1e4). 2 and 0 together lose 5e-4 > 4.5e-4, so 0
  // is declined, and 1 still fits.
  EXPECT_EQ(m.switched_on, (std::vector<size_t>{2, 0, 1}));
  EXPECT_EQ(m.on, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(c.tried, 3u);
  EXPECT_EQ(c.kept, 2u);
  EXPECT_NEAR(c.reached, 1.0 - 2e-4, 1e-12);
  EXPECT_DOUBLE_EQ(c.gained, 101.0);
}

TEST(Fp8Choice, ProductsWithoutGainAreNeverTried) {
  AdditiveModel m({1e-5, 1e-5, 1e-5});
  const Fp8Choice c = choose(m, {5.0, 0.0, -3.0}, 0.999);
  EXPECT_EQ(m.switched_on, (std::vector<size_t>{0}));
  EXPECT_EQ(c.tried, 1u);
  EXPECT_EQ(c.kept, 1u);
}

TEST(Fp8Choice, AGainThatDependsOnAnotherChoiceIsAskedAgain) {
  // Like BERT's FFN pair: the second product gains only once the first runs in FP8 (it then
  // needs no quantize pass); otherwise its pass costs more than FP8 saves.
  for (bool first_fits : {true, false}) {
    AdditiveModel m({first_fits ? 1e-4 : 5e-3, 1e-4});
    auto gain = [&](size_t i) { return i == 0 ? 10.0 : (m.on[0] ? 10.0 : -1.0); };
    const Fp8Choice c = choose_fp8_by_gain(
        m.harm, gain, [&](size_t i, bool v) { m.set(i, v); }, [&] { return m.cosine(); }, 0.999);
    if (first_fits) {
      EXPECT_EQ(m.switched_on, (std::vector<size_t>{0, 1}));
      EXPECT_EQ(c.kept, 2u);
    } else {
      // The first is declined, so the second never gains and is never tried.
      EXPECT_EQ(m.switched_on, (std::vector<size_t>{0}));
      EXPECT_EQ(c.kept, 0u);
      EXPECT_EQ(c.tried, 1u);
      EXPECT_DOUBLE_EQ(c.reached, 1.0);
    }
  }
}

TEST(Fp8Choice, HarmlessProductsGoFirst) {
  AdditiveModel m({0.0, 2e-4, -1e-9});
  choose(m, {1.0, 1000.0, 1.0}, 0.99);
  ASSERT_EQ(m.switched_on.size(), 3u);
  EXPECT_EQ(m.switched_on.back(), 1u);
}

}  // namespace
}  // namespace kpt::cuda

#endif  // KPT_HAVE_CUDA
