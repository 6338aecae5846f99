#pragma once
// Session's state, shared by session.cpp (open from ONNX, run) and engine_session.cpp (engine
// files: save and load).
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/cpu/packed_weights.hpp"
#include "ir/model.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/auto_precision.hpp"
#include "runtime/device_executor.hpp"
#include "runtime/executor.hpp"
#include "runtime/kernel_plan.hpp"
#include "runtime/memory_plan.hpp"
#include "runtime/shape_buckets.hpp"

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
  std::vector<BucketPlan> engine_bucket_plans;      // imported once the session is built
  std::unique_ptr<runtime::DeviceExecutor> device;  // target cuda
  std::unique_ptr<runtime::BucketRouter> buckets;
  mutable std::atomic<int64_t> bucket_runs{0}, padded_runs{0}, exact_runs{0};
  mutable std::mutex bucket_mu;
  // Memory-plan signature -> the symbol sizes of each bucket that has run.
  mutable std::map<std::string, std::map<std::string, int64_t>> bucket_signatures;

  void progress(const std::string& step) const {
    if (options.progress) options.progress(step);
  }
  std::vector<Value> positional(const std::map<std::string, Value>& inputs,
                                const std::map<std::string, DeviceTensor>& on_device = {}) const;
  std::vector<Value> calibration_inputs() const;
  // Precision::FP8's calibration run: the given calibration inputs, the rest valid random ones.
  std::vector<Value> fp8_calibration_inputs() const;
  // A run: routed through the shape buckets, planned, observed when `observer` is given.
  std::vector<Value> execute(const std::map<std::string, Value>& inputs,
                             const runtime::NodeObserver* observer) const;
  // "<first output>|<precision>|" of every node's kernel as planned (see packed_weights.hpp).
  std::vector<std::string> chosen_packed_prefixes() const;
};

}  // namespace kpt
