#include "backends/cuda/graph.hpp"

#include "backends/cuda/cuda_check.hpp"

namespace kpt::cuda {

CapturedGraph::~CapturedGraph() {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
}

void CapturedGraph::capture(cudaStream_t stream, const std::function<void(cudaStream_t)>& record) {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
  exec_ = nullptr;
  graph_ = nullptr;
  // Thread-local: other threads may keep calling CUDA while this one captures.
  KPT_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    record(stream);
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);  // leave the stream usable
    if (broken) cudaGraphDestroy(broken);
    throw;
  }
  KPT_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
  KPT_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &nodes_));
  KPT_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
}

void CapturedGraph::replay(cudaStream_t stream) const {
  if (!exec_) throw Error("CUDA graph replayed before it was captured");
  KPT_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

}  // namespace kpt::cuda
