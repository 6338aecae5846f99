#pragma once
// What an engine file was built for, and whether this machine can run it as built. Prepacked
// CPU weights are in the blocked layouts oneDNN chose for the building machine's ISA and
// oneDNN version; another machine may pick other layouts (or lack the instructions).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kpt::engine {

struct EngineTarget {
  std::string device = "cpu";  // "cpu" or "cuda"
  int device_index = 0;        // cuda:N
  // CPU: the usable ISA features oneDNN's layouts depend on, on the building machine.
  std::vector<std::string> cpu_features;
  std::string cpu_brand;
  std::string onednn_version;  // "2.6.3 (a1b2c3d)"
  // CUDA: the device it was built for.
  std::string gpu_name;
  int compute_major = 0, compute_minor = 0;

  std::string to_string()
      const;  // "cpu (AVX2 AVX512F ...; oneDNN 2.6.3)" or "cuda:0 (H200, sm_90)"
  nlohmann::json to_json() const;
  static EngineTarget from_json(const nlohmann::json& j);
};

// The target named by `spec` ("cpu", "cuda", "cuda:N") as this machine provides it. Fails for an
// unknown spec and for a cuda target on a machine without that GPU.
EngineTarget target_for_this_machine(const std::string& spec);

enum class TargetFit {
  Exact,   // the prepacked weights are usable as stored
  Repack,  // the machine differs but repacking was allowed: kernels pack from the fp32 weights
};

// Checks `built` against this machine. When it differs (a missing ISA feature, another oneDNN,
// a missing GPU) it fails naming what is missing and what to do, unless `allow_repack` (CPU
// targets only) lets the kernels repack from the fp32 weights the engine also carries.
TargetFit check_target(const EngineTarget& built, bool allow_repack, const std::string& path);

// The ISA features in `built` that `here` lacks.
std::vector<std::string> missing_features(const std::vector<std::string>& built,
                                          const std::vector<std::string>& here);

}  // namespace kpt::engine
