// kpt.MatMulBiasAct(A, B, C?) with activation: Y = act(A @ B + C).
#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {
namespace {

// C as the 1-D [N] bias that BiasGelu and FastGelu take: C itself, or a constant of shape
// [1, .., 1, N] reshaped; "" when C is neither.
std::string bias_vector(Emitter& e, const std::string& c) {
  auto& inits = e.graph().initializers;
  if (auto it = inits.find(c); it != inits.end()) {
    const Tensor& t = it->second;
    if (t.rank() == 1) return c;
    for (size_t k = 0; k + 1 < t.rank(); ++k) {
      if (t.dims()[k] != 1) return "";
    }
    return e.constant(t.reshaped({t.dim(-1)}), "bias");
  }
  return e.rank_of(c) == 1u ? c : "";
}

}  // namespace

std::string lower_matmul_bias_act(const ir::Node& n, Emitter& e) {
  check(n.inputs.size() >= 2 && n.outputs.size() == 1,
        n.label() + ": expected inputs A, B[, C] and one output");
  const std::string& a = n.inputs[0];
  const std::string& b = n.inputs[1];
  const std::string c = n.inputs.size() > 2 ? n.inputs[2] : "";
  const std::string act = n.attr_string("activation", "");
  const std::string& y = n.outputs[0];
  const bool contrib = e.mode() == ExportMode::ContribOps;

  // 2-D A: Gemm, or ONNX Runtime's FusedGemm with the activation in its epilogue.
  const bool gemm_act = act.empty() || act == "Relu" || act == "Sigmoid" || act == "Tanh";
  if (contrib && gemm_act && !c.empty() && e.rank_of(a) == 2u && e.rank_of(b) == 2u &&
      e.rank_of(c).value_or(3) <= 2) {
    if (act.empty()) {
      e.op_to("Gemm", {a, b, c}, {y});
      return "Gemm";
    }
    e.op_to("FusedGemm", {a, b, c}, {y},
            {{"activation", ir::Attribute::of_string("activation", act)}}, "com.microsoft");
    return "com.microsoft.FusedGemm";
  }
  const std::string product = e.op("MatMul", {a, b});
  if (contrib && e.opset() < 20 && (act == "Gelu" || act == "GeluTanh")) {
    const char* op = act == "Gelu" ? "BiasGelu" : "FastGelu";
    if (!c.empty()) {
      if (std::string bias = bias_vector(e, c); !bias.empty()) {
        e.op_to(op, {product, bias}, {y}, {}, "com.microsoft");
        return std::string("MatMul+com.microsoft.") + op;
      }
    }
  }
  std::string sum = c.empty() ? product : e.op("Add", {product, c});
  e.finish(activation(e, act, sum, {}, n), y);
  std::string what = c.empty() ? "MatMul" : "MatMul+Add";
  if (!act.empty()) what += "+" + act;
  return what;
}

}  // namespace kpt::onnx_export
