#pragma once
// NVIDIA GPUs as the CUDA driver reports them. The driver library is opened at run time so
// that kpt neither links CUDA nor needs it installed.
#include <cstdint>
#include <string>
#include <vector>

namespace kpt::sys {

struct GpuDevice {
  int index = 0;
  std::string name;
  int64_t total_memory_bytes = 0;
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
};

struct GpuInfo {
  bool driver_found = false;  // libcuda.so.1 could be opened and cuInit succeeded
  std::string problem;        // why no devices are listed ("" when all went well)
  int driver_version = 0;     // CUDA version the driver supports, e.g. 12040 for 12.4
  std::vector<GpuDevice> devices;
};

GpuInfo query_gpus();

// "12.4" for 12040.
std::string cuda_version_string(int version);

}  // namespace kpt::sys
