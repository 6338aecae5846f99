#pragma once
// How the GPU benchmarks time a launch sequence: CUDA events around each repetition on the
// stream, the median of `reps` after `warmup` untimed ones.
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/stream.hpp"

namespace kpt::gpu_bench {

inline double time_ms(cudaStream_t s, const std::function<void()>& fn, int warmup = 3,
                      int reps = 20) {
  for (int i = 0; i < warmup; ++i) fn();
  KPT_CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<double> t;
  cuda::Event a(true), b(true);
  for (int i = 0; i < reps; ++i) {
    a.record(s);
    fn();
    b.record(s);
    b.synchronize();
    t.push_back(b.elapsed_since(a));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace kpt::gpu_bench
