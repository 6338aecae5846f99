#pragma once
// The lowering of each fused op, one file per family. Each writes the node's replacement into
// the emitter and returns what it became ("MatMul+BiasGelu"), or "" to keep the node as it is.
#include <string>
#include <vector>

#include "export/emitter.hpp"

namespace kpt::onnx_export {

// Whether optional input i of n is given (present and not "").
inline bool has_input(const ir::Node& n, size_t i) {
  return i < n.inputs.size() && !n.inputs[i].empty();
}

// Activations shared by the GEMM and convolution lowerings: x -> act(x).
// MatMulBiasAct's names (Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh) and FusedConv's (Relu,
// LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid with their params); "" is the identity.
std::string activation(Emitter& e, const std::string& act, const std::string& x,
                       const std::vector<float>& params, const ir::Node& n);
// GELU of x in the form the mode and opset allow; approximate "none" (erf) or "tanh".
std::string gelu(Emitter& e, const std::string& x, const std::string& approximate);

std::string lower_gelu(const ir::Node& n, Emitter& e);
std::string lower_swiglu(const ir::Node& n, Emitter& e);
std::string lower_matmul_bias_act(const ir::Node& n, Emitter& e);
std::string lower_layer_norm(const ir::Node& n, Emitter& e);
std::string lower_rms_norm(const ir::Node& n, Emitter& e);
std::string lower_skip_layer_norm(const ir::Node& n, Emitter& e);
std::string lower_attention(const ir::Node& n, Emitter& e);
std::string lower_rotary(const ir::Node& n, Emitter& e);
// Contrib forms of the two (lower_attention_contrib.cpp): "" when the contrib op cannot
// compute exactly what the node does, with nothing written.
std::string lower_attention_to_mha(const ir::Node& n, Emitter& e);
std::string lower_rotary_to_contrib(const ir::Node& n, Emitter& e);
std::string lower_fused_conv(const ir::Node& n, Emitter& e);

}  // namespace kpt::onnx_export
