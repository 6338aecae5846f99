#pragma once
// The GPU executor: runs a session's graph on one CUDA device (runtime/device_executor.hpp).
// Weights are uploaded once at load (f32 converted to the session's f16/bf16); a run keeps
// every GPU value on the device, in buffers from the stream-ordered pool freed after their last
// reader, on one stream; CPU fallbacks get explicit copies (cuda_plan.hpp). With CUDA graphs on
// and no CPU fallback, the first run of each input signature records its allocations, places
// them in one arena, captures the whole run as a graph, and later runs of that signature copy
// their inputs in and replay it.
#include <functional>
#include <memory>
#include <mutex>

#include "backends/cuda/cuda_plan.hpp"
#include "runtime/device_executor.hpp"

namespace kpt::cuda {

// What f32 values become on the device at `p`: f16 (fp16, fp8), bf16, or f32 itself.
DType float_dtype_for(Precision p);

class CudaExecutor final : public runtime::DeviceExecutor {
 public:
  CudaExecutor(const ir::Graph& g, const SessionOptions& options, int device);
  ~CudaExecutor() override;
  std::vector<Value> run(const std::vector<Value>& inputs,
                         const runtime::DeviceIo& io) const override;
  std::vector<Value> run_profiled(const std::vector<Value>& inputs,
                                  std::vector<Session::NodeTime>& times) const override;
  std::string report() const override;
  void calibrate(const std::vector<Value>& inputs) override;

 private:
  struct State;
  static std::string choose_fp8_products(State& st,
                                         const std::function<std::vector<Value>()>& run_once,
                                         const std::vector<Value>& reference);
  std::unique_ptr<State> s_;
};

}  // namespace kpt::cuda
