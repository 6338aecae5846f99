#pragma once
// CUDA graphs: the kernels a plan queues on a stream, captured once and replayed as one launch,
// so that a run of many small kernels (batch-1 transformer layers) stops paying a CPU launch
// per kernel. A replay reads and writes the same device addresses the capture saw: callers
// keep their buffers fixed per captured shape and change only their contents.
#include <cuda_runtime.h>

#include <functional>

namespace kpt::cuda {

class CapturedGraph {
 public:
  CapturedGraph() = default;
  ~CapturedGraph();
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  // Calls `record(stream)` with the stream in capture mode (nothing runs), then instantiates
  // the graph. `record` must only queue work on the stream; run it once eagerly before, so that
  // one-time setup (cuBLASLt plans, kernel attributes) happens outside the capture.
  void capture(cudaStream_t stream, const std::function<void(cudaStream_t)>& record);
  // Queues the whole captured graph on `stream`.
  void replay(cudaStream_t stream) const;
  bool captured() const { return exec_ != nullptr; }
  size_t node_count() const { return nodes_; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  size_t nodes_ = 0;
};

}  // namespace kpt::cuda
