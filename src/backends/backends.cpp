#include "backends/backends.hpp"

#ifdef KPT_HAVE_CUDA
#include "backends/cuda/backend_status.hpp"
#endif

namespace kpt::backends {

std::vector<BackendStatus> backend_statuses() {
  std::vector<BackendStatus> r;
  r.push_back({"cpu", true, true, "reference kernels, fast kernels (oneDNN, OpenMP)"});
#ifdef KPT_HAVE_CUDA
  r.push_back(cuda::backend_status());
#else
  r.push_back({"cuda", false, false, "nvcc was not found at configure time, or KPT_CUDA=OFF"});
#endif
  return r;
}

}  // namespace kpt::backends
