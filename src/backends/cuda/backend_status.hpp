#pragma once
// The CUDA backend's line in `kpt doctor`: devices the runtime sees and whether cuBLASLt loads.
#include "backends/backends.hpp"

namespace kpt::cuda {

backends::BackendStatus backend_status();

}  // namespace kpt::cuda
