#pragma once
// Every CUDA runtime call is checked: a failure becomes a kpt::Error naming the call, the file
// and the CUDA error, because an exit status of 0 proves nothing about device work.
#include <cuda_runtime.h>

#include <string>

#include "kpt/error.hpp"

namespace kpt::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

}  // namespace kpt::cuda

#define KPT_CUDA_CHECK(call)                                                   \
  do {                                                                         \
    const cudaError_t kpt_cuda_err_ = (call);                                  \
    if (kpt_cuda_err_ != cudaSuccess)                                          \
      ::kpt::cuda::throw_cuda_error(kpt_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: launch-configuration errors show up here, not at the launch.
#define KPT_CUDA_CHECK_LAUNCH() KPT_CUDA_CHECK(cudaGetLastError())
