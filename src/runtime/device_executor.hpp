#pragma once
// Where a session's graph runs: the CPU executor (run_graph) by default, or a device executor
// that owns its own plan, weights and buffers (the CUDA backend, src/backends/cuda). The
// runtime sees devices only through this interface, so a build without CUDA compiles the same
// session code and reports a clear error when a device target is asked for.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"

namespace kpt::runtime {

struct DeviceTarget {
  std::string kind = "cpu";  // "cpu" or "cuda"
  int index = 0;
  bool is_cpu() const { return kind == "cpu"; }
};
// "cpu", "cuda" or "cuda:N"; anything else throws naming the accepted forms.
DeviceTarget parse_target(const std::string& s);

// Inputs already on the device and outputs to write there (I/O binding), by name.
struct DeviceIo {
  std::map<std::string, DeviceTensor> inputs;
  std::map<std::string, DeviceTensor> outputs;
};

class DeviceExecutor {
 public:
  virtual ~DeviceExecutor() = default;
  // `inputs` are positional (graph.inputs order); an input bound in io.inputs is read from the
  // device and its positional entry ignored. Outputs bound in io.outputs come back empty.
  virtual std::vector<Value> run(const std::vector<Value>& inputs, const DeviceIo& io) const = 0;
  // One eager run (no CUDA graph) timed node by node on the device.
  virtual std::vector<Value> run_profiled(const std::vector<Value>& inputs,
                                          std::vector<Session::NodeTime>& times) const = 0;
  // Which node runs where, the copies a run makes, weights, CUDA graph use.
  virtual std::string report() const = 0;
  // Precision::FP8: runs `inputs` (positional) once in f16 and sets each FP8 GEMM's activation
  // scale from what it saw; the session calls it once at open, before any other run.
  virtual void calibrate(const std::vector<Value>& inputs) = 0;
};

// The CUDA executor for `g` (optimized, types inferred; it must outlive the executor). Throws
// kpt::Error when this build has no CUDA backend or no device can be used.
std::unique_ptr<DeviceExecutor> make_cuda_executor(const ir::Graph& g,
                                                   const SessionOptions& options,
                                                   const DeviceTarget& target);

// The graph a cuda session runs, made without a device: `unoptimized` through the passes for the
// GPU target at `level` (CPU-layout passes left out), shapes inferred. `report`, when given,
// receives the passes' report.
ir::Graph optimize_for_cuda(ir::Graph unoptimized, OptimizationLevel level,
                            passes::OptimizeReport* report = nullptr);

// Where each node of `g` (optimized, types inferred) would run on target cuda at `precision`,
// and the copies a run would make: the plan part of the executor's report, computed without a
// device (so `kpt optimize --target cuda` explains a model on any machine of a CUDA build).
std::string describe_cuda_plan(const ir::Graph& g, Precision precision);

}  // namespace kpt::runtime
