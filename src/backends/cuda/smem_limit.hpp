#pragma once
// Kernels that use more than 48 KB of dynamic shared memory must have their limit raised first
// (cudaFuncSetAttribute). That is a driver call: done per launch it costs time, and it must not
// happen while a stream is being captured into a CUDA graph. This raises the limit only when a
// launch needs more than the kernel was last given on that device.
#include <cuda_runtime.h>

#include <atomic>

#include "backends/cuda/cuda_check.hpp"

namespace kpt::cuda {

template <auto Kernel>
void ensure_dynamic_smem(int bytes) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> raised[kMaxDevices] = {};
  int device = 0;
  KPT_CUDA_CHECK(cudaGetDevice(&device));
  std::atomic<int>& limit = raised[device % kMaxDevices];
  if (bytes <= 48 * 1024 || bytes <= limit.load(std::memory_order_acquire)) return;
  KPT_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  int seen = limit.load();
  while (seen < bytes && !limit.compare_exchange_weak(seen, bytes)) {
  }
}

}  // namespace kpt::cuda
