// com.microsoft.FusedConv(X, W, B?, Z?): activation(Conv(X, W, B) + Z).
#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {

std::string lower_fused_conv(const ir::Node& n, Emitter& e) {
  check(n.inputs.size() >= 2 && n.outputs.size() == 1,
        n.label() + ": expected inputs X, W[, B[, Z]] and one output");
  const std::string act = n.attr_string("activation", "");
  const bool has_z = n.inputs.size() > 3 && !n.inputs[3].empty();
  std::map<std::string, ir::Attribute> conv_attrs = n.attrs;
  conv_attrs.erase("activation");
  conv_attrs.erase("activation_params");
  std::vector<std::string> conv_inputs(n.inputs.begin(),
                                       n.inputs.begin() + std::min<size_t>(3, n.inputs.size()));
  while (!conv_inputs.empty() && conv_inputs.back().empty()) conv_inputs.pop_back();
  if (act.empty() && !has_z) {
    e.op_to("Conv", conv_inputs, {n.outputs[0]}, conv_attrs);
    return "Conv";
  }
  if (e.mode() == ExportMode::ContribOps) return "";
  std::string y = e.op("Conv", conv_inputs, conv_attrs);
  if (has_z) y = e.op("Add", {y, n.inputs[3]});
  e.finish(activation(e, act, y, n.attr_floats("activation_params"), n), n.outputs[0]);
  std::string what = has_z ? "Conv+Add" : "Conv";
  return act.empty() ? what : what + "+" + act;
}

}  // namespace kpt::onnx_export
