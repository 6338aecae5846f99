#pragma once
#include <cstdint>

namespace kpt::sys {

struct MemoryInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;  // MemAvailable: what can be allocated without swapping
};

// From /proc/meminfo; zeros when it cannot be read.
MemoryInfo query_memory();

}  // namespace kpt::sys
