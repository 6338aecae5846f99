#pragma once
// Which execution backends this build contains and whether each can run on this machine, for
// `kpt doctor` (and later for choosing where a plan runs).
#include <string>
#include <vector>

namespace kpt::backends {

struct BackendStatus {
  std::string name;       // "cpu", "cuda"
  bool compiled = false;  // built into this binary
  bool can_run = false;   // usable on this machine now
  std::string detail;     // devices and libraries found, or why it cannot run
};

std::vector<BackendStatus> backend_statuses();

}  // namespace kpt::backends
