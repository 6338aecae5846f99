#include "tools/kpt/bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/cast.hpp"
#include "kpt/error.hpp"

namespace kpt::cli {

double percentile(std::vector<double> values, double p) {
  check(!values.empty(), "percentile of no values");
  check(p >= 0 && p <= 100, "percentile must be in [0, 100], got " + std::to_string(p));
  std::sort(values.begin(), values.end());
  const double pos = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

LatencySummary summarize_latencies(const std::vector<double>& ms) {
  LatencySummary s;
  s.p50 = percentile(ms, 50);
  s.p90 = percentile(ms, 90);
  s.p99 = percentile(ms, 99);
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.min = *std::min_element(ms.begin(), ms.end());
  s.max = *std::max_element(ms.begin(), ms.end());
  return s;
}

}  // namespace kpt::cli
