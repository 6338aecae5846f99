#pragma once
// ONNX Runtime as the peer of kpt bench --compare ort: runs tools/ort/bench_ort.js through node
// on the inputs kpt ran, and brings back its latencies and outputs.
#include <map>
#include <string>
#include <vector>

#include "kpt/tensor.hpp"

namespace kpt::cli {

struct OrtRun {
  std::string version;  // of the onnxruntime-node package
  double load_ms = 0;
  double total_ms = 0;  // of the timed runs together
  std::vector<double> latencies_ms;
  std::map<std::string, Tensor> outputs;  // by output name, from the last timed run
};

// The folder holding bench_ort.js and node_modules/onnxruntime-node: $KPT_ORT_DIR, else
// tools/ort next to the build folder of this kpt binary, else ./tools/ort. Fails saying how to
// install the peer (scripts/install-deps.sh) when node or the package is missing.
std::string find_ort_peer();

// Runs `model` with ONNX Runtime on `inputs` (written as .npy to a temporary folder, removed
// afterwards) with `threads` intra-op threads (>= 1), `warmup` untimed and `iterations` timed
// runs, one after another. Fails with node's exit status when the run fails.
OrtRun run_ort(const std::string& peer_dir, const std::string& model,
               const std::map<std::string, Tensor>& inputs, int threads, int warmup,
               int iterations);

}  // namespace kpt::cli
