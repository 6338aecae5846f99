// kpt bench MODEL: measures load time, run latency percentiles, throughput and peak memory;
// with --compare ort, also ONNX Runtime on the same inputs, and checks that the outputs agree.
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/npy.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "passes/pass.hpp"
#include "runtime/random_inputs.hpp"
#include "sys/cpu_info.hpp"
#include "tools/kpt/bench_mixed.hpp"
#include "tools/kpt/bench_report.hpp"
#include "tools/kpt/bench_stats.hpp"
#include "tools/kpt/commands.hpp"
#include "tools/kpt/input_specs.hpp"
#include "tools/kpt/ort_compare.hpp"
#include "tools/kpt/summary.hpp"

namespace kpt::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::vector<std::string> inputs;
  int iterations = 20;
  int warmup = 2;
  std::string level = "all";
  std::string precision = "fp32";
  int threads = 0;
  std::string compare;
  double rtol = 1e-3;
  double atol = 1e-4;
  double min_cosine = 0.999;
  std::string json;
  std::string chart;
  std::string label;
  bool profile = false;
  std::string target = "cpu";
  bool no_cuda_graphs = false;
  bool no_gemm_tuning = false;
  bool repack = false;
  std::string buckets;
  size_t max_exact_plans = 8;
  std::string mixed;
  int requests = 200;
  uint64_t seed = 1;
  bool interleave = false;
};

// One profiled run, summed by op and kernel, heaviest first.
nlohmann::json print_profile(const Session& session, const std::map<std::string, Value>& feeds) {
  std::vector<Session::NodeTime> times;
  session.run_profiled(feeds, times);
  const auto rows = Session::by_op(times);
  double total = 0;
  for (const auto& r : rows) total += r.ms;
  std::printf("profile    one run, %.3f ms in %zu nodes; by op and kernel:\n", total, times.size());
  nlohmann::json j = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (i < 15) {
      std::printf("           %9.3f ms %5.1f%%  %4d x %s on %s\n", r.ms,
                  total > 0 ? 100 * r.ms / total : 0.0, r.nodes, r.op.c_str(), r.kernel.c_str());
    }
    j.push_back({{"op", r.op}, {"kernel", r.kernel}, {"ms", r.ms}, {"nodes", r.nodes}});
  }
  return j;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Cores this process may run on (its affinity mask), which is what "every core" means for both
// kpt and ONNX Runtime.
int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// "12 nodes on fast kernels, 3 on reference kernels; top: dnnl.matmul(fp32) 8, ..."
nlohmann::json kernel_summary(const std::map<std::string, int>& histogram) {
  int fast = 0, reference = 0;
  std::vector<std::pair<std::string, int>> entries(histogram.begin(), histogram.end());
  for (const auto& [name, count] : entries) {
    (name.rfind("reference:", 0) == 0 ? reference : fast) += count;
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string top;
  for (size_t i = 0; i < entries.size() && i < 6; ++i) {
    top += (i ? ", " : "") + entries[i].first + " " + std::to_string(entries[i].second);
  }
  std::printf("kernels    %d nodes on fast kernels, %d on reference kernels%s%s\n", fast, reference,
              top.empty() ? "" : "; top: ", top.c_str());
  return {{"fast_nodes", fast}, {"reference_nodes", reference}, {"histogram", histogram}};
}

nlohmann::json latency_json(const LatencySummary& s) {
  return {{"p50", s.p50},   {"p90", s.p90}, {"p99", s.p99},
          {"mean", s.mean}, {"min", s.min}, {"max", s.max}};
}

// Compares every output with ONNX Runtime's; returns whether all pass, and records each in
// j["agreement"]. fp32 requires every element within rtol/atol; bf16/int8/auto trade exactness
// for speed, so they require the cosine similarity instead.
bool check_agreement(const Args& a, Precision precision, const std::vector<std::string>& names,
                     const std::vector<Value>& ours, const OrtRun& ort, nlohmann::json& j,
                     std::string& failures) {
  bool ok = true;
  const bool exact = precision == Precision::FP32;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    auto theirs = ort.outputs.find(name);
    if (!ours[i].is_tensor() || theirs == ort.outputs.end()) {
      std::printf("agreement  %s: not compared (%s)\n", name.c_str(),
                  ours[i].is_tensor() ? "ONNX Runtime has no output of that name" : "not a tensor");
      continue;
    }
    const Agreement ag = compare_outputs(ours[i].tensor, theirs->second, a.rtol, a.atol);
    const bool pass =
        exact ? ag.within_tolerance() : ag.shape_error.empty() && ag.cosine >= a.min_cosine;
    j[name] = {{"max_abs", ag.max_abs},
               {"max_rel", ag.max_rel},
               {"cosine", ag.cosine},
               {"mismatches", ag.mismatches},
               {"elements", ours[i].tensor.numel()},
               {"pass", pass}};
    if (!ag.shape_error.empty()) j[name]["shape_error"] = ag.shape_error;
    std::printf(
        "agreement  %s: max abs %.3g, max rel %.3g, cosine %.7f, %lld of %lld beyond "
        "tolerance: %s\n",
        name.c_str(), ag.max_abs, ag.max_rel, ag.cosine, static_cast<long long>(ag.mismatches),
        static_cast<long long>(ours[i].tensor.numel()), pass ? "ok" : "FAILED");
    if (!pass) {
      ok = false;
      char buf[256];
      if (!ag.shape_error.empty()) {
        std::snprintf(buf, sizeof buf, "output '%s': %s", name.c_str(), ag.shape_error.c_str());
      } else if (exact) {
        std::snprintf(
            buf, sizeof buf, "output '%s': %lld elements beyond --rtol %g --atol %g (max abs %.3g)",
            name.c_str(), static_cast<long long>(ag.mismatches), a.rtol, a.atol, ag.max_abs);
      } else {
        std::snprintf(buf, sizeof buf, "output '%s': cosine %.7f below --min-cosine %g",
                      name.c_str(), ag.cosine, a.min_cosine);
      }
      failures += std::string(failures.empty() ? "" : "; ") + buf;
    }
  }
  return ok;
}

void run(const Args& args) {
  Args a = args;  // an engine file's precision replaces --precision
  check(a.iterations > 0, "--iterations must be at least 1, got " + std::to_string(a.iterations));
  check(a.warmup >= 0, "--warmup must be at least 0, got " + std::to_string(a.warmup));
  check(a.threads >= 0,
        "--threads must be 0 (every core) or more, got " + std::to_string(a.threads));
  check(a.compare.empty() || a.compare == "ort",
        "--compare '" + a.compare + "': the only peer is 'ort' (ONNX Runtime)");
  Precision precision = parse_precision(a.precision);
  const int threads = a.threads > 0 ? a.threads : usable_cores();
  // Fail before the long run, not after it, when the peer is missing.
  const std::string peer = a.compare == "ort" ? find_ort_peer() : "";

  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  options.precision = precision;
  options.threads = threads;
  options.target = a.target;
  options.cuda_graphs = !a.no_cuda_graphs;
  options.cuda_gemm_tuning = !a.no_gemm_tuning;
  options.repack_engine = a.repack;
  options.max_exact_plans = a.max_exact_plans;
  if (!a.buckets.empty()) options.buckets = parse_shape_buckets(a.buckets);
  if (!a.mixed.empty()) {
    check(a.compare.empty(), "--mixed compares buckets with exact shapes; drop --compare");
    MixedBenchArgs m;
    m.model = a.model;
    m.options = options;
    m.buckets = options.buckets;
    m.inputs = a.inputs;
    m.range = parse_mixed_range(a.mixed);
    m.requests = a.requests;
    m.seed = a.seed;
    m.interleave = a.interleave;
    m.rtol = a.rtol;
    m.atol = a.atol;
    const nlohmann::json j = run_mixed_bench(m);
    if (!a.json.empty()) {
      std::ofstream(a.json) << j.dump(1) << "\n";
      std::cout << "wrote " << a.json << "\n";
    }
    if (!j["agreement"]["pass"].get<bool>()) {
      fail("bucketed outputs disagree with exact-shape outputs: " +
           j["agreement"]["first_failure"].get<std::string>());
    }
    return;
  }
  nlohmann::json j;
  std::map<std::string, Tensor> inputs;
  std::vector<std::string> output_names;
  std::vector<Value> outputs;
  {
    auto t0 = Clock::now();
    Session session = Session::open(a.model, options);
    const double load_ms = ms_since(t0);
    const LoadInfo load = session.load_info();
    if (load.from_engine) {
      a.precision = nlohmann::json::parse(load.engine_metadata)["options"].value("precision", "");
      precision = parse_precision(a.precision);
    }
    inputs = make_inputs(session, a.inputs);
    std::printf("%s", session.buckets_report().c_str());
    std::map<std::string, Value> feeds;
    nlohmann::json inputs_json = nlohmann::json::object();
    for (const auto& [name, t] : inputs) {
      feeds[name] = Value::of(t);
      std::cout << "input      " << name << " " << summarize(Value::of(t)) << "\n";
      inputs_json[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.dims()}};
    }
    for (const auto& o : session.outputs()) output_names.push_back(o.name);
    nlohmann::json kernels = kernel_summary(session.kernel_histogram());
    std::cout << session.device_report();

    std::fflush(stdout);  // what runs is shown before the progress on stderr
    for (int i = 0; i < a.warmup; ++i) session.run(feeds);
    reset_peak_tensor_bytes();
    const size_t base = live_tensor_bytes();
    std::vector<double> latencies;
    auto start = Clock::now();
    for (int i = 0; i < a.iterations; ++i) {
      outputs.clear();  // the previous outputs are not part of this run's memory
      auto t = Clock::now();
      outputs = session.run(feeds);
      latencies.push_back(ms_since(t));
      std::fprintf(stderr, "\rrun %d/%d", i + 1, a.iterations);
    }
    std::fprintf(stderr, "\n");
    const double total_s = ms_since(start) / 1000.0;
    nlohmann::json profile;
    if (a.profile) profile = print_profile(session, feeds);
    const size_t peak = peak_tensor_bytes() - std::min(base, peak_tensor_bytes());
    const LatencySummary lat = summarize_latencies(latencies);
    const double throughput = static_cast<double>(a.iterations) / total_s;
    if (load.from_engine) {
      std::printf(
          "load       %.1f ms (engine file: map, verify, kernel preparation; %d prepacked weights "
          "reused, %d packed)\n",
          load_ms, load.packed_reused, load.packed_fresh);
    } else {
      std::printf("load       %.1f ms (import, optimize at level %s, kernel preparation)\n",
                  load_ms, a.level.c_str());
    }
    std::printf(
        "latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  (%d runs, %d warm-up, %d "
        "threads, %s)\n",
        lat.p50, lat.p90, lat.p99, a.iterations, a.warmup, threads, a.precision.c_str());
    std::printf("throughput %.2f runs/s\n", throughput);
    std::printf(
        "memory     peak %.2f MB of activations (tensor storage beyond inputs and "
        "weights)\n",
        static_cast<double>(peak) / 1e6);
    // The whole process's high-water mark (weights, activations, allocator slack); ONNX Runtime
    // runs later in a child process and is not part of it.
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    const auto peak_rss = static_cast<size_t>(usage.ru_maxrss) * 1024;
    std::printf("           peak %.2f MB resident for the whole process (weights included)\n",
                static_cast<double>(peak_rss) / 1e6);
    const MemoryStats mem = session.memory_stats();
    if (mem.planned_tensors > 0) {
      std::printf(
          "           arena %.2f MB holds %d planned tensors of %.2f MB (%d written in place)\n",
          static_cast<double>(mem.arena_bytes) / 1e6, mem.planned_tensors,
          static_cast<double>(mem.planned_tensor_bytes) / 1e6, mem.in_place);
    }
    if (!session.precision_report().empty()) std::printf("%s", session.precision_report().c_str());
    const sys::CpuInfo cpu = sys::query_cpu();
    std::printf("machine    %s, %d logical cores (%d usable)\n",
                cpu.brand.empty() ? "unknown CPU" : cpu.brand.c_str(), cpu.logical_cores,
                usable_cores());
    j = {{"model", a.model},
         {"backend", "cpu"},
         {"optimization", a.level},
         {"precision", a.precision},
         {"threads", threads},
         {"iterations", a.iterations},
         {"warmup", a.warmup},
         {"inputs", inputs_json},
         {"load_ms", load_ms},
         {"latency_ms", latency_json(lat)},
         {"latencies_ms", latencies},
         {"throughput_per_s", throughput},
         {"peak_memory_bytes", peak},
         {"peak_rss_bytes", peak_rss},
         {"kernels", kernels},
         {"profile", profile},
         {"memory_plan",
          {{"arena_bytes", mem.arena_bytes},
           {"planned_tensor_bytes", mem.planned_tensor_bytes},
           {"planned_tensors", mem.planned_tensors},
           {"in_place", mem.in_place}}},
         {"machine",
          {{"cpu", cpu.brand},
           {"logical_cores", cpu.logical_cores},
           {"physical_cores", cpu.physical_cores},
           {"usable_cores", usable_cores()}}}};
    if (!a.label.empty()) j["label"] = a.label;
  }  // our session (and its weights) is gone before ONNX Runtime loads its own copy

  bool agreement_ok = true;
  std::string failures;
  if (!peer.empty()) {
    const OrtRun ort = run_ort(peer, a.model, inputs, threads, a.warmup, a.iterations);
    const LatencySummary lat = summarize_latencies(ort.latencies_ms);
    const double throughput = static_cast<double>(a.iterations) / (ort.total_ms / 1000.0);
    const auto ours = j["latency_ms"];
    const double speedup = lat.p50 / ours["p50"].get<double>();
    const double speedup_p90 = lat.p90 / ours["p90"].get<double>();
    const double speedup_p99 = lat.p99 / ours["p99"].get<double>();
    const double throughput_ratio = j["throughput_per_s"].get<double>() / throughput;
    std::printf(
        "ort        p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  %.2f runs/s  (ONNX Runtime "
        "%s, load %.1f ms)\n",
        lat.p50, lat.p90, lat.p99, throughput, ort.version.c_str(), ort.load_ms);
    std::printf(
        "speedup    p50 %.2fx  p90 %.2fx  p99 %.2fx  throughput %.2fx  (latency: ONNX Runtime "
        "/ kpt, throughput: kpt / ONNX Runtime; above 1 means kpt is faster)\n",
        speedup, speedup_p90, speedup_p99, throughput_ratio);
    j["ort"] = {{"version", ort.version},
                {"settings",
                 {{"graph_optimization_level", "all"},
                  {"intra_op_threads", threads},
                  {"inter_op_threads", 1},
                  {"execution_mode", "sequential"}}},
                {"load_ms", ort.load_ms},
                {"latency_ms", latency_json(lat)},
                {"latencies_ms", ort.latencies_ms},
                {"throughput_per_s", throughput}};
    j["speedup_p50"] = speedup;
    j["speedup"] = {{"p50", speedup},
                    {"p90", speedup_p90},
                    {"p99", speedup_p99},
                    {"throughput", throughput_ratio}};
    nlohmann::json agreement = nlohmann::json::object();
    agreement_ok = check_agreement(a, precision, output_names, outputs, ort, agreement, failures);
    j["agreement"] = agreement;
    j["agreement_ok"] = agreement_ok;
    j["tolerance"] = {{"rtol", a.rtol},
                      {"atol", a.atol},
                      {"min_cosine", a.min_cosine},
                      {"criterion", precision == Precision::FP32 ? "rtol/atol" : "cosine"}};
  }
  if (!a.json.empty()) {
    std::ofstream(a.json) << j.dump(1) << "\n";
    std::cout << "wrote " << a.json << "\n";
  }
  if (!a.chart.empty()) {
    std::ofstream(a.chart) << render_svg(latency_chart({j}));
    std::cout << "wrote " << a.chart << "\n";
  }
  check(agreement_ok, "kpt's outputs disagree with ONNX Runtime's: " + failures);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("bench", "Measure a model's latency, throughput and peak memory");
  cmd->add_option("model", a->model, "Model file (.onnx) or engine file (.kpt)")->required();
  cmd->add_flag("--repack", a->repack,
                "Engine built on another CPU/oneDNN: repack its weights instead of refusing");
  cmd->add_option("--input", a->inputs,
                  "NAME=FILE.npy, or NAME=DIMS (e.g. input_ids=8x128) for random valid values; "
                  "inputs sharing its dim names take the same sizes");
  cmd->add_option("--precision", a->precision,
                  "fp32 (default), bf16, int8 or auto; fp16 or fp8 with --target cuda")
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "auto", "fp16", "fp8"}));
  cmd->add_option("--target", a->target, "cpu (default), cuda or cuda:N");
  cmd->add_flag("--no-cuda-graphs", a->no_cuda_graphs,
                "with --target cuda: launch kernels one by one instead of replaying a CUDA graph");
  cmd->add_flag("--no-gemm-tuning", a->no_gemm_tuning,
                "with --target cuda: take cuBLASLt's heuristic first choice for each GEMM instead "
                "of timing its candidates at the first run");
  cmd->add_option("--threads", a->threads,
                  "Threads per run, for kpt and ONNX Runtime (0: every "
                  "core, the default)");
  cmd->add_option("--iterations", a->iterations, "Timed runs (default 20)");
  cmd->add_flag("--profile", a->profile,
                "After the timed runs, time one run node by node and print where it went");
  cmd->add_option("--warmup", a->warmup, "Untimed runs first (default 2)");
  cmd->add_option("--level", a->level, "Optimization level: none, basic, extended, all")
      ->check(CLI::IsMember({"none", "basic", "extended", "all"}));
  cmd->add_option("--compare", a->compare,
                  "ort: also run ONNX Runtime (node, onnxruntime-node) on the same inputs, "
                  "check its outputs agree and report the speedup")
      ->check(CLI::IsMember({"ort"}));
  cmd->add_option("--rtol", a->rtol, "fp32 agreement: relative tolerance (default 1e-3)");
  cmd->add_option("--atol", a->atol, "fp32 agreement: absolute tolerance (default 1e-4)");
  cmd->add_option("--min-cosine", a->min_cosine,
                  "bf16/int8/auto agreement: least cosine similarity per output (default 0.999)");
  cmd->add_option("--json", a->json, "Write the results as JSON");
  cmd->add_option("--chart", a->chart, "Write a bar chart of p50 latency (SVG)");
  cmd->add_option("--label", a->label, "Name of this run in JSON, charts and tables");
  cmd->add_option("--buckets", a->buckets,
                  "Shape buckets, like \"batch=1,8;seq=128,512\" (NAME~=: paddable, NAME==: "
                  "never padded; default: padded when the batch dim or in a mask input)");
  cmd->add_option("--max-exact-plans", a->max_exact_plans,
                  "Plans kept for shapes outside the buckets (LRU; default 8)");
  cmd->add_option("--mixed", a->mixed,
                  "SYMBOL=LO..HI: a stream of --requests whose SYMBOL size is uniform in LO..HI, "
                  "run with exact-shape plans and with --buckets on the same inputs; reports "
                  "both, the speedup and whether their outputs agree");
  cmd->add_option("--requests", a->requests, "--mixed: requests in the stream (default 200)");
  cmd->add_option("--seed", a->seed, "--mixed: seed of the lengths and inputs (default 1)");
  cmd->add_flag("--interleave", a->interleave,
                "--mixed: keep both sessions loaded and alternate them request by request, so "
                "load from other processes falls on both alike (twice the memory)");
  cmd->callback([a] { run(*a); });
  add_bench_report(app);
}

}  // namespace kpt::cli
