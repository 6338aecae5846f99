#include "backends/cpu/conv_spec.hpp"

#include <algorithm>

namespace kpt::cpu {

std::optional<ConvSpec> read_conv_spec(const ir::Node& node, const Dims& w) {
  if (w.size() != 3 && w.size() != 4) return std::nullopt;
  ConvSpec s;
  s.spatial = static_cast<int>(w.size()) - 2;
  const size_t r = static_cast<size_t>(s.spatial);
  s.kernel.assign(w.begin() + 2, w.end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != s.kernel)
    return std::nullopt;
  s.group = node.attr_int("group", 1);
  s.strides = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  s.dilations = node.attr_ints("dilations", std::vector<int64_t>(r, 1));
  s.pads = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  s.auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (s.auto_pad.empty()) s.auto_pad = "NOTSET";
  if (s.group < 1 || w[0] % s.group != 0) return std::nullopt;
  if (s.strides.size() != r || s.dilations.size() != r || s.pads.size() != 2 * r)
    return std::nullopt;
  for (size_t i = 0; i < r; ++i) {
    if (s.kernel[i] < 1 || s.strides[i] < 1 || s.dilations[i] < 1) return std::nullopt;
    if (s.pads[i] < 0 || s.pads[i + r] < 0) return std::nullopt;
  }
  if (s.auto_pad != "NOTSET" && s.auto_pad != "VALID" && s.auto_pad != "SAME_UPPER" &&
      s.auto_pad != "SAME_LOWER")
    return std::nullopt;
  if (!node.domain.empty()) {  // FusedConv and its blocked form
    const std::string act = node.attr_string("activation", "");
    const std::vector<float> p = node.attr_floats("activation_params");
    if (act == "Relu") {
      s.activation = Activation::Relu;
    } else if (act == "LeakyRelu" && p.size() >= 1) {
      s.activation = Activation::LeakyRelu;
      s.alpha = p[0];
    } else if (act == "Sigmoid") {
      s.activation = Activation::Sigmoid;
    } else if (act == "Tanh") {
      s.activation = Activation::Tanh;
    } else if (act == "Clip" && p.size() >= 2) {
      s.activation = Activation::Clip;
      s.alpha = p[0];
      s.beta = p[1];
    } else if (!act.empty()) {
      return std::nullopt;
    }
  }
  return s;
}

std::optional<ConvGeometry> conv_geometry(const ConvSpec& s, const Dims& in) {
  const size_t r = s.kernel.size();
  if (in.size() != r) return std::nullopt;
  ConvGeometry g;
  g.pads_begin.assign(s.pads.begin(), s.pads.begin() + static_cast<std::ptrdiff_t>(r));
  g.pads_end.assign(s.pads.begin() + static_cast<std::ptrdiff_t>(r), s.pads.end());
  g.out.resize(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t dk = (s.kernel[i] - 1) * s.dilations[i] + 1;
    if (s.auto_pad == "SAME_UPPER" || s.auto_pad == "SAME_LOWER") {
      const int64_t o = (in[i] + s.strides[i] - 1) / s.strides[i];
      const int64_t total = std::max<int64_t>(0, (o - 1) * s.strides[i] + dk - in[i]);
      const int64_t small = total / 2;
      g.pads_begin[i] = s.auto_pad == "SAME_UPPER" ? small : total - small;
      g.pads_end[i] = total - g.pads_begin[i];
    } else if (s.auto_pad == "VALID") {
      g.pads_begin[i] = g.pads_end[i] = 0;
    }
    const int64_t span = in[i] + g.pads_begin[i] + g.pads_end[i] - dk;
    if (span < 0) return std::nullopt;
    g.out[i] = span / s.strides[i] + 1;
  }
  return g;
}

}  // namespace kpt::cpu
