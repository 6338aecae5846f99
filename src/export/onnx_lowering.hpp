#pragma once
// Lowers an optimized model (what Session leaves after its passes) to a graph that ONNX Runtime
// 1.30 can load: one opset per domain, no kpt-domain nodes. Fused standard ops newer than the
// model's default-domain opset (Attention, RMSNormalization, RotaryEmbedding, SwiGLU, Gelu,
// LayerNormalization) and kpt.MatMulBiasAct become ONNX Runtime contrib ops where one computes
// the same thing (ContribOps) or plain standard ops valid at the model's opset (StandardOnly).
// The blocked-layout convolutions are undone in both modes. docs/EXPORT.md has the table.
#include <map>
#include <string>

#include "ir/model.hpp"

namespace kpt::onnx_export {

enum class ExportMode { ContribOps, StandardOnly };
const char* export_mode_name(ExportMode mode);  // "contrib-ops", "standard-ops-only"

struct LoweringReport {
  int target_opset = 0;                // the default-domain opset every node is valid at
  std::map<std::string, int> lowered;  // "kpt.MatMulBiasAct -> MatMul+BiasGelu" -> count
  std::string explain() const;
};

// Rewrites `m` in place; fails with kpt::Error naming the node when a node has no form at the
// target opset (in StandardOnly mode: no standard form at all).
LoweringReport lower_for_onnx(ir::Model& m, ExportMode mode);

}  // namespace kpt::onnx_export
