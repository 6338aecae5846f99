#pragma once
// The numbers kpt bench reports: latency percentiles and how closely two runs' outputs agree.
#include <string>
#include <vector>

#include "core/compare.hpp"
#include "kpt/tensor.hpp"

namespace kpt::cli {

// The p-th percentile (0..100) of `values`, interpolating linearly between the two nearest
// ranks (numpy's default), so p50 of an even count is the mean of the middle two.
double percentile(std::vector<double> values, double p);

struct LatencySummary {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};
LatencySummary summarize_latencies(const std::vector<double>& ms);

using kpt::Agreement;
using kpt::compare_outputs;

}  // namespace kpt::cli
