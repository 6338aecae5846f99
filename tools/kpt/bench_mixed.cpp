#include "tools/kpt/bench_mixed.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <set>

#include "kpt/error.hpp"
#include "runtime/random_inputs.hpp"
#include "runtime/shape_buckets.hpp"
#include "tools/kpt/bench_stats.hpp"
#include "tools/kpt/input_specs.hpp"

namespace kpt::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

using Feeds = std::map<std::string, Value>;

// CPU seconds this process has used (every thread, user and system): on a shared machine the
// work a pass does, where wall time also counts the time other processes held the cores.
double process_cpu_s() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Pass {
  std::vector<double> latencies;
  double total_ms = 0;
  double cpu_s = 0;
  std::vector<std::vector<Value>> kept_outputs;  // of the first check_requests requests
};

void progress(const char* label, size_t i, size_t n) {
  std::fprintf(stderr, "\r%s %zu/%zu", label, i + 1, n);
  if (i + 1 == n) std::fprintf(stderr, "\n");
}

// One request on one session, its wall and CPU time added to the pass.
void run_request(const Session& session, const Feeds& feeds, Pass& p, bool keep) {
  const double cpu = process_cpu_s();
  const auto t = Clock::now();
  auto outputs = session.run(feeds);
  const double ms = ms_since(t);
  p.latencies.push_back(ms);
  p.total_ms += ms;
  p.cpu_s += process_cpu_s() - cpu;
  if (keep) p.kept_outputs.push_back(std::move(outputs));
}

nlohmann::json pass_json(const Pass& p) {
  const LatencySummary s = summarize_latencies(p.latencies);
  return {{"total_ms", p.total_ms},
          {"p50_ms", s.p50},
          {"p90_ms", s.p90},
          {"p99_ms", s.p99},
          {"mean_ms", s.mean},
          {"max_ms", s.max},
          {"latencies_ms", p.latencies}};
}

void print_pass(const char* label, const Pass& p, const std::string& detail) {
  const LatencySummary s = summarize_latencies(p.latencies);
  std::printf(
      "%-10s total %.1f ms  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  cpu %.1f s  "
      "(%s)\n",
      label, p.total_ms, s.p50, s.p90, s.p99, s.max, p.cpu_s, detail.c_str());
}

}  // namespace

MixedRange parse_mixed_range(const std::string& text) {
  const std::string help = "--mixed '" + text + "': expected SYMBOL=LO..HI, like seq=16..256";
  const size_t eq = text.find('=');
  const size_t dots = text.find("..");
  check(eq != std::string::npos && eq > 0 && dots != std::string::npos && dots > eq, help);
  const std::string lo = text.substr(eq + 1, dots - eq - 1), hi = text.substr(dots + 2);
  for (const auto& n : {lo, hi}) {
    check(!n.empty() && n.size() <= 15 && n.find_first_not_of("0123456789") == std::string::npos,
          help);
  }
  MixedRange r{text.substr(0, eq), std::stoll(lo), std::stoll(hi)};
  check(r.lo >= 1 && r.lo <= r.hi, help + " with 1 <= LO <= HI");
  return r;
}

std::vector<int64_t> mixed_lengths(const MixedRange& range, int requests, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto span = static_cast<uint64_t>(range.hi - range.lo + 1);
  std::vector<int64_t> lengths;
  for (int i = 0; i < requests; ++i)
    lengths.push_back(range.lo + static_cast<int64_t>(rng() % span));
  return lengths;
}

nlohmann::json run_mixed_bench(const MixedBenchArgs& a) {
  check(a.requests > 0, "--requests must be at least 1, got " + std::to_string(a.requests));
  check(!a.buckets.empty(), "--mixed needs --buckets: the bucketed pass is what it measures");
  SessionOptions exact_options = a.options;
  exact_options.buckets = {};
  std::vector<Feeds> requests;
  std::map<std::string, int64_t> other_sizes;
  const std::vector<int64_t> lengths = mixed_lengths(a.range, a.requests, a.seed);
  nlohmann::json j;
  Pass exact, bucketed;
  MemoryStats exact_memory;
  auto t0 = Clock::now();
  std::optional<Session> exact_session(Session::open(a.model, exact_options));
  {
    const Session& session = *exact_session;
    // The other symbols' sizes come from --input (or the defaults of valid random inputs).
    Feeds base;
    for (const auto& [name, t] : make_inputs(session, a.inputs, a.seed)) base[name] = Value::of(t);
    auto sizes = runtime::symbol_sizes(session.inputs(), base);
    check(sizes.has_value(), "--input: the inputs disagree on the size of a symbolic dim");
    std::string known;
    for (const auto& [name, size] : *sizes) known += (known.empty() ? "" : ", ") + name;
    check(sizes->count(a.range.symbol), "--mixed: '" + a.range.symbol +
                                            "' is not a symbol of the model's inputs; they are: " +
                                            (known.empty() ? "(none)" : known));
    other_sizes = *sizes;
    other_sizes.erase(a.range.symbol);
    for (size_t i = 0; i < lengths.size(); ++i) {
      auto s = *sizes;
      s[a.range.symbol] = lengths[i];
      Feeds feeds;
      for (const auto& [name, t] : runtime::make_valid_inputs(
               session.graph(), session.inputs(), runtime::input_dims_for(session.inputs(), s), {},
               a.seed + i)) {
        feeds[name] = Value::of(t);
      }
      requests.push_back(std::move(feeds));
    }
    std::string others;
    for (const auto& [name, size] : other_sizes) {
      others += (others.empty() ? "" : ", ") + name + "=" + std::to_string(size);
    }
    const std::set<int64_t> distinct(lengths.begin(), lengths.end());
    std::printf("mixed      %d requests, %s uniform in %lld..%lld (seed %llu): %zu distinct; %s\n",
                a.requests, a.range.symbol.c_str(), static_cast<long long>(a.range.lo),
                static_cast<long long>(a.range.hi), static_cast<unsigned long long>(a.seed),
                distinct.size(), others.empty() ? "no other symbols" : others.c_str());
    std::fflush(stdout);
    j["distinct_sizes"] = distinct.size();
    j["other_sizes"] = other_sizes;
  }
  // The exact pass gets the same untimed warm-up as the bucketed one (the bucket shapes, run
  // as they are), so neither pays the process's first oneDNN code generation in its stream.
  t0 = Clock::now();
  const runtime::BucketRouter router(a.buckets, exact_session->inputs(), exact_session->outputs());
  for (const auto& sizes : router.combinations(other_sizes)) {
    Feeds feeds;
    for (const auto& [name, t] : runtime::make_valid_inputs(
             exact_session->graph(), exact_session->inputs(),
             runtime::input_dims_for(exact_session->inputs(), sizes), {}, a.seed)) {
      feeds[name] = Value::of(t);
    }
    exact_session->run(feeds);
  }
  const double exact_warm_ms = ms_since(t0);
  if (!a.interleave) {
    for (size_t i = 0; i < requests.size(); ++i) {
      run_request(*exact_session, requests[i], exact, static_cast<int>(i) < a.check_requests);
      progress("exact", i, requests.size());
    }
    exact_memory = exact_session->memory_stats();
    exact_session.reset();  // one model in memory at a time
  }

  SessionOptions bucket_options = a.options;
  bucket_options.buckets = a.buckets;
  Session session = Session::open(a.model, bucket_options);
  std::printf("%s", session.buckets_report().c_str());
  auto t = Clock::now();
  const auto warmed = session.warm_buckets(other_sizes);
  const double warm_ms = ms_since(t);
  const BucketStats before = session.bucket_stats();
  for (size_t i = 0; i < requests.size(); ++i) {
    const bool keep = static_cast<int>(i) < a.check_requests;
    if (a.interleave && i % 2 == 0) run_request(*exact_session, requests[i], exact, keep);
    run_request(session, requests[i], bucketed, keep);
    if (a.interleave && i % 2 == 1) run_request(*exact_session, requests[i], exact, keep);
    progress(a.interleave ? "both" : "bucketed", i, requests.size());
  }
  if (a.interleave) exact_memory = exact_session->memory_stats();
  const BucketStats after = session.bucket_stats();
  const MemoryStats bucket_memory = session.memory_stats();

  char detail[256];
  std::snprintf(detail, sizeof detail,
                "%d memory plans made, at most %zu kept; the same warm-up in %.1f ms first",
                exact_memory.plans, a.options.max_exact_plans, exact_warm_ms);
  print_pass("exact", exact, detail);
  const int64_t at_bucket = after.bucket_runs - before.bucket_runs;
  const int64_t padded = after.padded_runs - before.padded_runs;
  const int64_t exact_runs = after.exact_runs - before.exact_runs;
  std::snprintf(detail, sizeof detail,
                "%lld at a bucket, %lld padded, %lld exact; %zu buckets warmed in %.1f ms first",
                static_cast<long long>(at_bucket), static_cast<long long>(padded),
                static_cast<long long>(exact_runs), warmed.size(), warm_ms);
  print_pass("bucketed", bucketed, detail);
  const LatencySummary se = summarize_latencies(exact.latencies);
  const LatencySummary sb = summarize_latencies(bucketed.latencies);
  const double speedup = exact.total_ms / bucketed.total_ms;
  std::printf(
      "speedup    total %.2fx  p50 %.2fx  p99 %.2fx  cpu %.2fx  (exact / bucketed; above 1: "
      "buckets are faster); with the warm-ups counted: %.2fx\n",
      speedup, se.p50 / sb.p50, se.p99 / sb.p99, exact.cpu_s / bucketed.cpu_s,
      (exact.total_ms + exact_warm_ms) / (bucketed.total_ms + warm_ms));

  // Padding must not change what the model computes for the real positions.
  double max_abs = 0;
  int64_t mismatches = 0;
  std::string failures;
  for (size_t i = 0; i < exact.kept_outputs.size(); ++i) {
    for (size_t o = 0; o < exact.kept_outputs[i].size(); ++o) {
      const Value& want = exact.kept_outputs[i][o];
      const Value& got = bucketed.kept_outputs[i][o];
      if (!want.is_tensor() || !got.is_tensor()) continue;
      const Agreement ag = compare_outputs(got.tensor, want.tensor, a.rtol, a.atol);
      max_abs = std::max(max_abs, ag.max_abs);
      mismatches += ag.mismatches;
      if (!ag.within_tolerance() && failures.empty()) {
        failures = "request " + std::to_string(i) + " (" + a.range.symbol + "=" +
                   std::to_string(lengths[i]) + ") output " + std::to_string(o) + ": " +
                   (ag.shape_error.empty()
                        ? std::to_string(ag.mismatches) + " elements beyond tolerance, max abs " +
                              std::to_string(ag.max_abs)
                        : ag.shape_error);
      }
    }
  }
  std::printf(
      "agreement  %zu requests compared, bucketed against exact: max abs %.3g, %lld beyond "
      "--rtol %g --atol %g: %s\n",
      exact.kept_outputs.size(), max_abs, static_cast<long long>(mismatches), a.rtol, a.atol,
      failures.empty() ? "ok" : "FAILED");

  j["model"] = a.model;
  j["requests"] = a.requests;
  j["mixed"] = {{"symbol", a.range.symbol}, {"lo", a.range.lo}, {"hi", a.range.hi}};
  j["seed"] = a.seed;
  j["lengths"] = lengths;
  j["buckets"] = to_string(a.buckets);
  j["max_exact_plans"] = a.options.max_exact_plans;
  j["interleaved"] = a.interleave;
  j["exact"] = pass_json(exact);
  j["exact"]["memory_plans_made"] = exact_memory.plans;
  j["exact"]["warm_ms"] = exact_warm_ms;
  j["bucketed"] = pass_json(bucketed);
  j["bucketed"]["warm_ms"] = warm_ms;
  j["bucketed"]["buckets_warmed"] = warmed.size();
  j["bucketed"]["runs"] = {{"at_bucket", at_bucket}, {"padded", padded}, {"exact", exact_runs}};
  j["bucketed"]["memory_plans_made"] = bucket_memory.plans;
  j["speedup"] = {
      {"total", speedup},
      {"p50", se.p50 / sb.p50},
      {"p99", se.p99 / sb.p99},
      {"cpu", exact.cpu_s / bucketed.cpu_s},
      {"total_with_warmup", (exact.total_ms + exact_warm_ms) / (bucketed.total_ms + warm_ms)}};
  j["agreement"] = {{"requests", exact.kept_outputs.size()},
                    {"max_abs", max_abs},
                    {"mismatches", mismatches},
                    {"pass", failures.empty()}};
  if (!failures.empty()) j["agreement"]["first_failure"] = failures;
  return j;
}

}  // namespace kpt::cli
