// kpt bench MODEL: measures load time, run latency percentiles, throughput and peak memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/npy.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "passes/pass.hpp"
#include "runtime/random_inputs.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::vector<std::string> inputs;
  int iterations = 20;
  int warmup = 2;
  std::string level = "all";
  std::string json;
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// NAME=FILE.npy reads a file; NAME=DIMS (like 8x128) makes random values of that shape.
std::map<std::string, Value> make_inputs(const Session& s, const std::vector<std::string>& specs) {
  std::map<std::string, Dims> shapes;
  std::map<std::string, Value> inputs;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    check(eq != std::string::npos && eq > 0,
          "--input '" + spec + "': expected NAME=FILE.npy or NAME=DIMS");
    std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
    if (value.size() > 4 && value.substr(value.size() - 4) == ".npy") {
      inputs[name] = Value::of(read_npy(value));
    } else {
      shapes[name] = runtime::parse_dims(value);
    }
  }
  // Symbols fixed by one input's dims (batch, seq) apply to every input that shares them.
  std::map<std::string, int64_t> symbols;
  for (const auto& info : s.inputs()) {
    auto it = shapes.find(info.name);
    if (it == shapes.end()) continue;
    check(!info.has_shape || it->second.size() == info.dims.size(),
          "--input " + info.name + ": the model declares rank " + std::to_string(info.dims.size()) +
              ", got " + dims_to_string(it->second));
    for (size_t d = 0; d < info.symbols.size() && d < it->second.size(); ++d) {
      if (!info.symbols[d].empty()) symbols[info.symbols[d]] = it->second[d];
    }
  }
  uint64_t seed = 1;
  for (const auto& info : s.inputs()) {
    if (inputs.count(info.name)) continue;
    auto it = shapes.find(info.name);
    inputs[info.name] =
        Value::of(it != shapes.end() ? runtime::random_tensor(info.dtype, it->second, seed)
                                     : runtime::random_input(info, symbols, seed));
    ++seed;
  }
  return inputs;
}

void run(const Args& a) {
  check(a.iterations > 0, "--iterations must be at least 1");
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  auto t0 = Clock::now();
  Session session = Session::open(a.model, options);
  const double load_ms = ms_since(t0);
  auto inputs = make_inputs(session, a.inputs);
  for (const auto& [name, v] : inputs) {
    std::cout << "input  " << name << " " << v.tensor.describe() << "\n";
  }
  for (int i = 0; i < a.warmup; ++i) session.run(inputs);
  reset_peak_tensor_bytes();
  const size_t base = live_tensor_bytes();
  std::vector<double> latencies;
  auto start = Clock::now();
  for (int i = 0; i < a.iterations; ++i) {
    auto t = Clock::now();
    session.run(inputs);
    latencies.push_back(ms_since(t));
    std::fprintf(stderr, "\rrun %d/%d", i + 1, a.iterations);
  }
  std::fprintf(stderr, "\n");
  const double total_s = ms_since(start) / 1000.0;
  const size_t peak = peak_tensor_bytes() - std::min(base, peak_tensor_bytes());
  const double p50 = percentile(latencies, 50), p90 = percentile(latencies, 90),
               p99 = percentile(latencies, 99);
  const double throughput = static_cast<double>(a.iterations) / total_s;
  std::printf("load       %.1f ms (import + optimize at level %s)\n", load_ms, a.level.c_str());
  std::printf("latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  (%d runs, %d warm-up)\n", p50, p90,
              p99, a.iterations, a.warmup);
  std::printf("throughput %.2f runs/s\n", throughput);
  std::printf("memory     peak %.2f MB of activations (tensor storage beyond inputs and weights)\n",
              static_cast<double>(peak) / 1e6);
  if (!a.json.empty()) {
    nlohmann::json j = {
        {"model", a.model},          {"backend", "cpu-reference"},
        {"optimization", a.level},   {"iterations", a.iterations},
        {"load_ms", load_ms},        {"latency_ms", {{"p50", p50}, {"p90", p90}, {"p99", p99}}},
        {"latencies_ms", latencies}, {"throughput_per_s", throughput},
        {"peak_memory_bytes", peak}};
    std::ofstream(a.json) << j.dump(1) << "\n";
  }
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Measure a model's latency, throughput and peak memory");
  cmd->add_option("model", a->model, "Model file (.onnx)")->required();
  cmd->add_option("--input", a->inputs,
                  "NAME=FILE.npy, or NAME=DIMS (e.g. input_ids=8x128) for random valid values");
  cmd->add_option("--iterations", a->iterations, "Timed runs (default 20)");
  cmd->add_option("--warmup", a->warmup, "Untimed runs first (default 2)");
  cmd->add_option("--level", a->level, "Optimization level: none, basic, extended, all")
      ->check(CLI::IsMember({"none", "basic", "extended", "all"}));
  cmd->add_option("--json", a->json, "Write the results as JSON");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
