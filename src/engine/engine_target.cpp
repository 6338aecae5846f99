#include "engine/engine_target.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>

#include "kpt/error.hpp"
#include "sys/cpu_info.hpp"
#include "sys/gpu_info.hpp"

namespace kpt::engine {

namespace {

// The extensions that decide which oneDNN implementation (and so which weight layout) runs.
const char* const kLayoutFeatures[] = {"AVX2",     "AVX512F",     "AVX512BW",    "AVX512VL",
                                       "AVX512DQ", "AVX512-VNNI", "AVX512-BF16", "AVX512-FP16",
                                       "AMX-TILE", "AMX-BF16",    "AMX-INT8"};

std::vector<std::string> usable_layout_features() {
  const sys::CpuInfo cpu = sys::query_cpu();
  std::vector<std::string> out;
  for (const char* f : kLayoutFeatures) {
    if (cpu.usable(f)) out.push_back(f);
  }
  return out;
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " (" + v->hash + ")";
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

std::string EngineTarget::to_string() const {
  if (device == "cuda") {
    return "cuda:" + std::to_string(device_index) + " (" + gpu_name + ", sm_" +
           std::to_string(compute_major) + std::to_string(compute_minor) + ")";
  }
  return "cpu (" + join(cpu_features) + "; oneDNN " + onednn_version + ")";
}

nlohmann::json EngineTarget::to_json() const {
  return {
      {"device", device},
      {"device_index", device_index},
      {"cpu_features", cpu_features},
      {"cpu_brand", cpu_brand},
      {"onednn_version", onednn_version},
      {"gpu_name", gpu_name},
      {"compute_capability", std::to_string(compute_major) + "." + std::to_string(compute_minor)}};
}

EngineTarget EngineTarget::from_json(const nlohmann::json& j) {
  EngineTarget t;
  t.device = j.value("device", "");
  t.device_index = j.value("device_index", 0);
  t.cpu_features = j.value("cpu_features", std::vector<std::string>{});
  t.cpu_brand = j.value("cpu_brand", "");
  t.onednn_version = j.value("onednn_version", "");
  t.gpu_name = j.value("gpu_name", "");
  const std::string cc = j.value("compute_capability", "0.0");
  const auto dot = cc.find('.');
  if (dot != std::string::npos) {
    t.compute_major = std::atoi(cc.substr(0, dot).c_str());
    t.compute_minor = std::atoi(cc.substr(dot + 1).c_str());
  }
  return t;
}

EngineTarget target_for_this_machine(const std::string& spec) {
  EngineTarget t;
  t.onednn_version = onednn_version();
  if (spec == "cpu") {
    t.device = "cpu";
    t.cpu_features = usable_layout_features();
    t.cpu_brand = sys::query_cpu().brand;
    return t;
  }
  check(spec == "cuda" || spec.rfind("cuda:", 0) == 0,
        "unknown target '" + spec + "'; expected cpu, cuda or cuda:N");
  t.device = "cuda";
  if (spec.size() > 5) {
    const std::string n = spec.substr(5);
    check(!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit),
          "target '" + spec + "': expected cuda:N with N a device index");
    t.device_index = std::stoi(n);
  }
  const sys::GpuInfo gpus = sys::query_gpus();
  check(t.device_index < static_cast<int>(gpus.devices.size()),
        "target '" + spec + "': this machine has " + std::to_string(gpus.devices.size()) +
            " NVIDIA GPU(s)" + (gpus.problem.empty() ? "" : " (" + gpus.problem + ")") +
            "; an engine for a GPU is built on a machine with that GPU");
  const auto& d = gpus.devices[static_cast<size_t>(t.device_index)];
  t.gpu_name = d.name;
  t.compute_major = d.compute_major;
  t.compute_minor = d.compute_minor;
  return t;
}

std::vector<std::string> missing_features(const std::vector<std::string>& built,
                                          const std::vector<std::string>& here) {
  std::vector<std::string> missing;
  for (const auto& f : built) {
    if (std::find(here.begin(), here.end(), f) == here.end()) missing.push_back(f);
  }
  return missing;
}

TargetFit check_target(const EngineTarget& built, bool allow_repack, const std::string& path) {
  if (built.device == "cuda") {
    const sys::GpuInfo gpus = sys::query_gpus();
    check(built.device_index < static_cast<int>(gpus.devices.size()),
          path + ": engine built for " + built.to_string() + ", but this machine has " +
              std::to_string(gpus.devices.size()) + " NVIDIA GPU(s)" +
              (gpus.problem.empty() ? "" : " (" + gpus.problem + ")") +
              ": run it on a machine with that GPU, or re-run kpt optimize --target cpu");
    const auto& d = gpus.devices[static_cast<size_t>(built.device_index)];
    check(d.compute_major == built.compute_major && d.compute_minor == built.compute_minor,
          path + ": engine built for " + built.to_string() + ", this machine's GPU " +
              std::to_string(built.device_index) + " is " + d.name + " (sm_" +
              std::to_string(d.compute_major) + std::to_string(d.compute_minor) +
              "): re-run kpt optimize on this machine");
    return TargetFit::Exact;
  }
  check(built.device == "cpu", path + ": engine built for an unknown target '" + built.device +
                                   "'; this kpt runs cpu and cuda engines");
  const EngineTarget here = target_for_this_machine("cpu");
  const auto missing = missing_features(built.cpu_features, here.cpu_features);
  std::string problem;
  if (!missing.empty()) {
    problem = "its prepacked weights need " + join(missing) + ", which this CPU (" +
              here.cpu_brand + ") lacks";
  } else if (built.onednn_version != here.onednn_version) {
    problem = "its prepacked weights are in oneDNN " + built.onednn_version +
              " layouts, this kpt uses oneDNN " + here.onednn_version;
  }
  if (problem.empty()) return TargetFit::Exact;
  check(allow_repack, path + ": engine built for " + built.to_string() + ": " + problem +
                          ". Re-run kpt optimize on this machine, or load with --repack "
                          "(SessionOptions::repack_engine) to repack from the fp32 weights the "
                          "engine carries");
  return TargetFit::Repack;
}

}  // namespace kpt::engine
