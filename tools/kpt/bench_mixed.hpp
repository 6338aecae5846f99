#pragma once
// kpt bench --mixed: a stream of requests whose length varies, run once with plans made per
// exact shape (kept in the bounded LRU) and once with shape buckets, on the same inputs.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kpt/session.hpp"

namespace kpt::cli {

// "seq=16..256": the symbol whose size varies and its inclusive range.
struct MixedRange {
  std::string symbol;
  int64_t lo = 0, hi = 0;
};
MixedRange parse_mixed_range(const std::string& text);

// `lengths` drawn uniformly from the range with a seeded generator: the same list for a seed.
std::vector<int64_t> mixed_lengths(const MixedRange& range, int requests, uint64_t seed);

struct MixedBenchArgs {
  std::string model;
  SessionOptions options;           // threads, precision, level, max_exact_plans
  ShapeBuckets buckets;             // for the bucketed pass
  std::vector<std::string> inputs;  // --input specs fixing the other symbols
  MixedRange range;
  int requests = 200;
  uint64_t seed = 1;
  // Both sessions loaded, each request run on one then the other (order alternating), so load
  // from other processes falls on both alike; costs the model's memory twice.
  bool interleave = false;
  int check_requests = 16;  // requests whose outputs the two passes must agree on
  double rtol = 1e-3, atol = 1e-4;
};

// Runs both passes and prints the comparison; the JSON holds every number printed, and
// j["agreement"]["pass"] whether the bucketed outputs agree with the exact ones.
nlohmann::json run_mixed_bench(const MixedBenchArgs& args);

}  // namespace kpt::cli
