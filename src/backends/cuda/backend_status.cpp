#include "backends/cuda/backend_status.hpp"

#include "backends/cuda/cublaslt_api.hpp"
#include "backends/cuda/device.hpp"

namespace kpt::cuda {

backends::BackendStatus backend_status() {
  backends::BackendStatus s;
  s.name = "cuda";
  s.compiled = true;
  const RuntimeStatus& rt = runtime_status();
  const std::string built = "built for sm_80, sm_90a; CUDA runtime " +
                            std::to_string(rt.runtime_version / 1000) + "." +
                            std::to_string((rt.runtime_version % 1000) / 10);
  if (!rt.usable) {
    s.detail = built + "; cannot run here: " + rt.problem;
    return s;
  }
  std::string devices;
  for (const auto& d : rt.devices) {
    if (!devices.empty()) devices += ", ";
    devices += "[" + std::to_string(d.index) + "] " + d.name + " sm_" + std::to_string(d.major) +
               std::to_string(d.minor) + " " + std::to_string(d.total_memory >> 30) + " GiB";
    if (d.major < 8) devices += " (too old: needs sm_80+)";
  }
  const CublasLtLoad& lt = cublaslt_load();
  bool any_supported = false;
  for (const auto& d : rt.devices) any_supported |= d.major >= 8;
  s.can_run = any_supported && lt.api != nullptr;
  s.detail = built + "; " + std::to_string(rt.devices.size()) + " device(s): " + devices + "; " +
             (lt.api ? "cuBLASLt " + std::to_string(lt.api->get_version()) + " (" + lt.library + ")"
                     : lt.problem);
  return s;
}

}  // namespace kpt::cuda
