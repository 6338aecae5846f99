#include "backends/cuda/device.hpp"

#include <mutex>

#include "backends/cuda/cuda_check.hpp"

namespace kpt::cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw Error(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
              ") in " + what + " at " + file + ":" + std::to_string(line));
}

namespace {

RuntimeStatus probe() {
  RuntimeStatus s;
  cudaRuntimeGetVersion(&s.runtime_version);
  cudaDriverGetVersion(&s.driver_version);  // 0 when no driver is installed
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.problem = s.driver_version == 0 ? std::string("no NVIDIA driver")
                                      : std::string("CUDA runtime: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the error so later calls start clean
    return s;
  }
  if (count == 0) {
    s.problem = "no CUDA device";
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    DeviceProps d;
    d.index = i;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    d.total_memory = p.totalGlobalMem;
    d.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
    d.l2_bytes = p.l2CacheSize;
    s.devices.push_back(d);
  }
  s.usable = !s.devices.empty();
  if (!s.usable) s.problem = "no CUDA device could be queried";
  return s;
}

}  // namespace

const RuntimeStatus& runtime_status() {
  static const RuntimeStatus status = probe();
  return status;
}

void require_device() {
  const RuntimeStatus& s = runtime_status();
  if (!s.usable) throw Error("the CUDA backend cannot run here: " + s.problem);
}

const DeviceProps& current_device() {
  require_device();
  int index = 0;
  KPT_CUDA_CHECK(cudaGetDevice(&index));
  const auto& devices = runtime_status().devices;
  for (const auto& d : devices)
    if (d.index == index) return d;
  throw Error("CUDA device " + std::to_string(index) + " was not probed");
}

}  // namespace kpt::cuda
