#pragma once
// What a Conv or FusedConv node asks for, read once from its attributes, and the geometry of
// one input shape: the parts of the fast convolution kernel that do not touch oneDNN.
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/tensor.hpp"

namespace kpt::cpu {

enum class Activation { None, Relu, LeakyRelu, Sigmoid, Tanh, Clip };

struct ConvSpec {
  int spatial = 2;  // 1 or 2
  int64_t group = 1;
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad = "NOTSET";
  Activation activation = Activation::None;
  float alpha = 0, beta = 0;  // LeakyRelu slope; Clip bounds
};

// The node's spec when the fast kernel handles it: 1-D or 2-D, known activation, weight dims
// `w` (M x C/group x kernel...) consistent with the attributes. nullopt otherwise.
std::optional<ConvSpec> read_conv_spec(const ir::Node& node, const Dims& w);

struct ConvGeometry {
  std::vector<int64_t> pads_begin, pads_end, out;  // spatial
};

// Pads and output dims for spatial input dims `in`; nullopt when the (dilated) kernel does
// not fit.
std::optional<ConvGeometry> conv_geometry(const ConvSpec& spec, const Dims& in);

}  // namespace kpt::cpu
