#pragma once
// The one thread pool: OpenMP's, which oneDNN (Debian's build) also uses, so our kernels and
// oneDNN's never run two pools against each other on the same cores.
#include <cstdint>
#include <functional>

namespace kpt::cpu {

// Threads kernels use on the calling thread (from set_num_threads, else all cores).
int num_threads();
// Sets the thread count for work started from the calling thread; n <= 0 means all cores.
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks covering [0, n), in parallel when n is large enough
// that splitting pays (min_chunk items at least per chunk).
void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace kpt::cpu
