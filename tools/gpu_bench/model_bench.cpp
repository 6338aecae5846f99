// kpt_gpu_model_bench: a whole model on target cuda, timed the way PyTorch's side
// (scripts/gpu_model_bench.py) is timed: inputs and outputs on the device (I/O binding), the
// stream synchronized after each run, median of N runs after warm-up. Also times runs with host
// inputs and outputs (the plain Session::run), with CUDA graphs off, and checks the output
// against a reference .npy (PyTorch's fp32 output on the same inputs).
//
// usage: kpt_gpu_model_bench MODEL INPUT_DIR [--precision fp16|bf16|fp32] [--iters N]
//                            [--reference OUT.npy] [--label TEXT] [--profile ROWS]
//                            [--gemm-tuning on|off]
// INPUT_DIR holds NAME.npy for each model input. Prints one JSON object per line.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "core/compare.hpp"
#include "core/npy.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"

namespace {

using namespace kpt;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <typename F>
double median_ms(F&& run, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    run();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return median(t);
}

struct DeviceMemory {
  void* p = nullptr;
  explicit DeviceMemory(size_t bytes) {
    KPT_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 1)));
  }
  ~DeviceMemory() { cudaFree(p); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
};

// Device time by op and kernel over one eager run (Session::run_profiled), heaviest first; the
// top rows also go to stderr.
nlohmann::json profile(const Session& s, const std::map<std::string, Value>& inputs, int rows) {
  std::vector<Session::NodeTime> times;
  for (int i = 0; i < 3; ++i) s.run_profiled(inputs, times);  // the last of three, warm
  const auto by_op = Session::by_op(times);
  double total = 0;
  for (const auto& r : by_op) total += r.ms;
  std::fprintf(stderr, "profile: one eager run, %.3f ms of device time in %zu nodes\n", total,
               times.size());
  nlohmann::json j = nlohmann::json::array();
  for (size_t i = 0; i < by_op.size(); ++i) {
    const auto& r = by_op[i];
    if (static_cast<int>(i) < rows) {
      std::fprintf(stderr, "  %8.3f ms %5.1f%% %4d x %s on %s\n", r.ms,
                   100 * r.ms / std::max(total, 1e-9), r.nodes, r.op.c_str(), r.kernel.c_str());
    }
    j.push_back({{"op", r.op}, {"kernel", r.kernel}, {"ms", r.ms}, {"nodes", r.nodes}});
  }
  return j;
}

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: kpt_gpu_model_bench MODEL INPUT_DIR [--precision P] [--iters N] "
                 "[--reference OUT.npy] [--label TEXT] [--profile ROWS] [--gemm-tuning on|off]\n");
    return 2;
  }
  const std::string model = argv[1], input_dir = argv[2];
  std::string precision = "fp16", reference, label;
  int iters = 50, profile_rows = 0;
  bool gemm_tuning = true;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--precision") {
      precision = v;
    } else if (k == "--iters") {
      iters = std::stoi(v);
    } else if (k == "--reference") {
      reference = v;
    } else if (k == "--label") {
      label = v;
    } else if (k == "--profile") {
      profile_rows = std::stoi(v);
    } else if (k == "--gemm-tuning") {
      if (v != "on" && v != "off") throw Error("--gemm-tuning takes on or off, got " + v);
      gemm_tuning = v == "on";
    } else {
      throw Error("unknown option " + k);
    }
  }
  nlohmann::json j;
  j["label"] = label;
  j["model"] = model;
  j["precision"] = precision;
  for (bool graphs : {true, false}) {
    SessionOptions o;
    o.target = "cuda";
    o.precision = parse_precision(precision);
    o.cuda_graphs = graphs;
    o.cuda_gemm_tuning = gemm_tuning;
    const auto t0 = Clock::now();
    Session s = Session::open(model, o);
    const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::map<std::string, Value> host_inputs;
    std::map<std::string, DeviceTensor> dev_inputs, dev_outputs;
    std::vector<std::unique_ptr<DeviceMemory>> memory;
    for (const auto& info : s.inputs()) {
      const Tensor t = read_npy((std::filesystem::path(input_dir) / (info.name + ".npy")).string());
      host_inputs[info.name] = Value::of(t);
      memory.push_back(std::make_unique<DeviceMemory>(t.nbytes()));
      KPT_CUDA_CHECK(cudaMemcpy(memory.back()->p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice));
      dev_inputs[info.name] = DeviceTensor{t.dtype(), t.dims(), memory.back()->p};
      j["inputs"][info.name] = t.dims();
    }
    // One host run gives the output shapes for the device-bound outputs.
    const std::vector<Value> outs = s.run(host_inputs);
    for (size_t i = 0; i < outs.size(); ++i) {
      const Tensor& t = outs[i].tensor;
      memory.push_back(std::make_unique<DeviceMemory>(t.nbytes()));
      dev_outputs[s.outputs()[i].name] = DeviceTensor{t.dtype(), t.dims(), memory.back()->p};
    }
    const std::string mode = graphs ? "graph" : "eager";
    if (graphs) {
      std::fprintf(stderr, "%s", s.device_report().c_str());
      j["load_ms"] = load_ms;
      if (!reference.empty()) {
        const Tensor ref = read_npy(reference);
        const Agreement a = compare_outputs(outs[0].tensor, ref, 1e-2, 1e-2);
        j["agreement"] = {
            {"cosine", a.cosine}, {"max_abs", a.max_abs}, {"shape_error", a.shape_error}};
      }
    }
    j["device_io_ms"][mode] =
        median_ms([&] { s.run_bound({}, dev_inputs, dev_outputs); }, 5, iters);
    j["host_io_ms"][mode] = median_ms([&] { s.run(host_inputs); }, 3, std::max(5, iters / 5));
    if (!graphs && profile_rows > 0) j["profile"] = profile(s, host_inputs, profile_rows);
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kpt_gpu_model_bench: %s\n", e.what());
    return 1;
  }
}
