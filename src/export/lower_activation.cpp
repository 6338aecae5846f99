// Gelu, SwiGLU and the activations of the GEMM and convolution epilogues.
#include <cmath>
#include <numbers>

#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {

std::string gelu(Emitter& e, const std::string& x, const std::string& approximate) {
  const bool tanh_form = approximate == "tanh";
  check(tanh_form || approximate == "none",
        "Gelu approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
  if (e.opset() >= 20)
    return e.op("Gelu", {x},
                {{"approximate", ir::Attribute::of_string("approximate", approximate)}});
  if (e.mode() == ExportMode::ContribOps)
    return e.op(tanh_form ? "FastGelu" : "Gelu", {x}, {}, "com.microsoft");
  const DType t = e.dtype_of(x);
  std::string inner;
  if (tanh_form) {
    // tanh(sqrt(2/pi) * (x + 0.044715 x^3))
    const std::string cube = e.op("Mul", {x, e.op("Mul", {x, x})});
    const std::string poly = e.op("Add", {x, e.op("Mul", {cube, e.scalar(t, 0.044715, "c")})});
    inner =
        e.op("Tanh", {e.op("Mul", {poly, e.scalar(t, std::sqrt(2.0 / std::numbers::pi), "k")})});
  } else {
    inner = e.op("Erf", {e.op("Div", {x, e.scalar(t, std::numbers::sqrt2, "sqrt2")})});
  }
  const std::string one_plus = e.op("Add", {inner, e.scalar(t, 1.0, "one")});
  return e.op("Mul", {e.op("Mul", {x, e.scalar(t, 0.5, "half")}), one_plus});
}

std::string activation(Emitter& e, const std::string& act, const std::string& x,
                       const std::vector<float>& params, const ir::Node& n) {
  const auto param = [&](size_t i) {
    check(params.size() > i, n.label() + ": activation " + act + " needs " + std::to_string(i + 1) +
                                 " activation_params, got " + std::to_string(params.size()));
    return params[i];
  };
  if (act.empty()) return x;
  if (act == "Relu" || act == "Sigmoid" || act == "Tanh") return e.op(act, {x});
  if (act == "Gelu") return gelu(e, x, "none");
  if (act == "GeluTanh") return gelu(e, x, "tanh");
  if (act == "Silu") return e.op("Mul", {x, e.op("Sigmoid", {x})});
  if (act == "LeakyRelu")
    return e.op("LeakyRelu", {x}, {{"alpha", ir::Attribute::of_float("alpha", param(0))}});
  if (act == "HardSigmoid")
    return e.op("HardSigmoid", {x},
                {{"alpha", ir::Attribute::of_float("alpha", param(0))},
                 {"beta", ir::Attribute::of_float("beta", param(1))}});
  if (act == "Clip") {
    if (e.opset() >= 11) {
      const DType t = e.dtype_of(x);
      return e.op("Clip", {x, e.scalar(t, param(0), "min"), e.scalar(t, param(1), "max")});
    }
    return e.op("Clip", {x},
                {{"min", ir::Attribute::of_float("min", param(0))},
                 {"max", ir::Attribute::of_float("max", param(1))}});
  }
  fail(n.label() + ": activation \"" + act +
       "\" has no ONNX form (expected Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh, LeakyRelu, "
       "HardSigmoid or Clip)");
}

std::string lower_gelu(const ir::Node& n, Emitter& e) {
  if (e.opset() >= 20) return "";
  const std::string approx = n.attr_string("approximate", "none");
  e.finish(gelu(e, n.inputs.at(0), approx), n.outputs.at(0));
  if (e.mode() == ExportMode::ContribOps)
    return approx == "tanh" ? "com.microsoft.FastGelu" : "com.microsoft.Gelu";
  return approx == "tanh" ? "Tanh form" : "Erf form";
}

// SwiGLU (opset 28) is newer than ONNX Runtime 1.30 knows, in either mode.
std::string lower_swiglu(const ir::Node& n, Emitter& e) {
  const std::string& a = n.inputs.at(0);
  const float alpha = n.attr_float("alpha", 1.0f);
  std::string gate_in = a;
  if (alpha != 1.0f) gate_in = e.op("Mul", {a, e.scalar(e.dtype_of(a), alpha, "alpha")});
  const std::string swish = e.op("Mul", {a, e.op("Sigmoid", {gate_in})});
  e.op_to("Mul", {swish, n.inputs.at(1)}, {n.outputs.at(0)});
  return "Sigmoid+Mul+Mul";
}

}  // namespace kpt::onnx_export
