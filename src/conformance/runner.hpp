#pragma once
#include <string>
#include <vector>

namespace kpt::conformance {

struct CaseResult {
  std::string folder;  // "node", "simple", ...
  std::string name;    // "test_add"
  std::string status;  // "passed", "failed", "unsupported"
  std::string reason;
  double seconds = 0;
};

struct Options {
  double rtol = 1e-3;
  double atol = 1e-7;
  bool tolerance_overridden = false;  // --rtol/--atol given: no per-case loosening
  double timeout_s = 60;
  std::string filter;  // substring a case's "folder/name" must contain
  int jobs = 1;
  // Where the cases run: "cpu", or "cuda[:N]" at `precision` ("fp32", "fp16", "bf16"). On a GPU
  // target a case counts as claimed by the backend only when no node falls back to the CPU;
  // the others are reported "unsupported" without running.
  std::string target = "cpu";
  std::string precision = "fp32";
};

// Every case folder (holding model.onnx) below `root`, as (folder, name, path).
struct CaseDir {
  std::string folder, name, path;
};
std::vector<CaseDir> find_cases(const std::string& root);

// Runs one case in this process (may crash or hang: callers isolate it).
CaseResult run_case_inline(const CaseDir& c, const Options& o);
// Runs one case in a child process with a time limit; a crash or hang fails that case only.
CaseResult run_case_isolated(const CaseDir& c, const Options& o);

}  // namespace kpt::conformance
