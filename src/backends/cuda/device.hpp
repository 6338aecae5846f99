#pragma once
// The CUDA devices this process can use, asked through the CUDA runtime (linked statically; it
// opens the driver at run time, so a machine without one just reports "no driver").
#include <cuda_runtime.h>

#include <string>
#include <vector>

namespace kpt::cuda {

struct DeviceProps {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
  size_t shared_memory_per_block_optin = 0;
  int l2_bytes = 0;
};

struct RuntimeStatus {
  bool usable = false;  // a device is there and the runtime initialized
  std::string problem;  // why not ("" when usable)
  int runtime_version = 0;
  int driver_version = 0;
  std::vector<DeviceProps> devices;
};

// Probes once per process; never throws (a missing driver is a status, not an error).
const RuntimeStatus& runtime_status();

// Throws kpt::Error naming the problem when no device can be used.
void require_device();

// Properties of the current device (cached per index).
const DeviceProps& current_device();

}  // namespace kpt::cuda
