#include "sys/memory_info.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace kpt::sys {

MemoryInfo query_memory() {
  MemoryInfo m;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string key;
    int64_t kib = 0;
    ss >> key >> kib;  // "MemTotal:       131072000 kB"
    if (key == "MemTotal:") m.total_bytes = kib * 1024;
    if (key == "MemAvailable:") m.available_bytes = kib * 1024;
  }
  return m;
}

}  // namespace kpt::sys
