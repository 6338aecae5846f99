#include "sys/gpu_info.hpp"

#include <dlfcn.h>

#include <memory>

namespace kpt::sys {

namespace {

// The few driver API entry points doctor needs, with the C signatures of cuda.h (CUresult is
// an int, CUdevice an int) so that no CUDA header is needed to build.
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);

constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;

struct LibraryCloser {
  void operator()(void* handle) const { dlclose(handle); }
};

}  // namespace

std::string cuda_version_string(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

GpuInfo query_gpus() {
  GpuInfo info;
  std::unique_ptr<void, LibraryCloser> lib(dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL));
  if (!lib) {
    info.problem = "no NVIDIA driver found (libcuda.so.1 cannot be loaded)";
    return info;
  }
  auto sym = [&](const char* name) { return dlsym(lib.get(), name); };
  auto init = reinterpret_cast<CuInit>(sym("cuInit"));
  auto driver_version = reinterpret_cast<CuDriverGetVersion>(sym("cuDriverGetVersion"));
  auto count = reinterpret_cast<CuDeviceGetCount>(sym("cuDeviceGetCount"));
  auto get = reinterpret_cast<CuDeviceGet>(sym("cuDeviceGet"));
  auto name = reinterpret_cast<CuDeviceGetName>(sym("cuDeviceGetName"));
  auto total_mem = reinterpret_cast<CuDeviceTotalMem>(sym("cuDeviceTotalMem_v2"));
  auto attribute = reinterpret_cast<CuDeviceGetAttribute>(sym("cuDeviceGetAttribute"));
  if (!init || !driver_version || !count || !get || !name || !total_mem || !attribute) {
    info.problem = "libcuda.so.1 lacks driver API entry points (driver too old?)";
    return info;
  }
  if (int rc = init(0); rc != 0) {
    info.problem = "cuInit failed with CUDA error " + std::to_string(rc) +
                   (rc == 100 ? " (no CUDA-capable device)" : "");
    return info;
  }
  info.driver_found = true;
  driver_version(&info.driver_version);
  int n = 0;
  if (int rc = count(&n); rc != 0) {
    info.problem = "cuDeviceGetCount failed with CUDA error " + std::to_string(rc);
    return info;
  }
  for (int i = 0; i < n; ++i) {
    int dev = 0;
    if (get(&dev, i) != 0) continue;
    GpuDevice d;
    d.index = i;
    char buf[256] = {};
    if (name(buf, sizeof buf - 1, dev) == 0) d.name = buf;
    size_t bytes = 0;
    if (total_mem(&bytes, dev) == 0) d.total_memory_bytes = static_cast<int64_t>(bytes);
    attribute(&d.compute_major, kAttrComputeCapabilityMajor, dev);
    attribute(&d.compute_minor, kAttrComputeCapabilityMinor, dev);
    attribute(&d.multiprocessors, kAttrMultiprocessorCount, dev);
    info.devices.push_back(d);
  }
  return info;
}

}  // namespace kpt::sys
