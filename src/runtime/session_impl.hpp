#pragma once
// Session's state, shared by session.cpp (open from ONNX, run) and engine_session.cpp (engine
// files: save and load).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cpu/packed_weights.hpp"
#include "ir/model.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/auto_precision.hpp"
#include "runtime/device_executor.hpp"
#include "runtime/kernel_plan.hpp"
#include "runtime/memory_plan.hpp"

namespace kpt {

struct Session::Impl {
  ir::Model model;
  SessionOptions options;
  std::vector<IoInfo> inputs, outputs;
  std::string source_path;  // the model file opened ("" from bytes)
  // What the kernels packed (recorded for save_engine) or, from an engine, what they reuse.
  std::unique_ptr<cpu::PackedWeights> packed = std::make_unique<cpu::PackedWeights>();
  runtime::KernelPlan plan;
  std::unique_ptr<runtime::MemoryPlanner> memory;
  std::optional<runtime::AutoPrecisionResult> auto_result;

  // Set by one of the two ways in: optimize at open, or read from an engine file.
  std::optional<passes::OptimizeReport> optimize_report;
  std::string optimization_text;  // the report's text (an engine stores it)
  std::string precision_report;
  bool from_engine = false;
  std::map<std::string, Precision> engine_precisions;  // by node's first output
  std::string engine_metadata;
  std::unique_ptr<runtime::DeviceExecutor> device;  // target cuda

  void progress(const std::string& step) const {
    if (options.progress) options.progress(step);
  }
  std::vector<Value> positional(const std::map<std::string, Value>& inputs,
                                const std::map<std::string, DeviceTensor>& on_device = {}) const;
  std::vector<Value> calibration_inputs() const;
  // "<first output>|<precision>|" of every node's kernel as planned (see packed_weights.hpp).
  std::vector<std::string> chosen_packed_prefixes() const;
};

}  // namespace kpt
