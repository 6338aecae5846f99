// LayerNormalization (opset 17), RMSNormalization (opset 23) and ONNX Runtime's
// Skip(Simplified)LayerNormalization.
#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {
namespace {

// Output names of a normalization; "" where nobody reads it.
struct NormOutputs {
  std::string y, mean, inv_std;
};

std::string output(const ir::Node& n, size_t i) {
  return i < n.outputs.size() ? n.outputs[i] : "";
}

// y = (x - mean) / sqrt(var + eps) * scale + bias over the axes from `axis` on; `simplified`
// (RMS): y = x / sqrt(mean(x^2) + eps) * scale.
void normalize(Emitter& e, const ir::Node& n, const std::string& x, const std::string& scale,
               const std::string& bias, int64_t axis, float eps, bool simplified,
               const NormOutputs& out) {
  const auto eps_attr = ir::Attribute::of_float("epsilon", eps);
  const auto axis_attr = ir::Attribute::of_int("axis", axis);
  if (!simplified && e.opset() >= 17) {
    std::vector<std::string> outs = {out.y, out.mean, out.inv_std};
    while (outs.back().empty()) outs.pop_back();
    std::vector<std::string> ins = {x, scale};
    if (!bias.empty()) ins.push_back(bias);
    e.op_to("LayerNormalization", ins, outs, {{"axis", axis_attr}, {"epsilon", eps_attr}});
    return;
  }
  if (simplified && out.inv_std.empty() && e.opset() >= 23) {
    e.op_to("RMSNormalization", {x, scale}, {out.y}, {{"axis", axis_attr}, {"epsilon", eps_attr}});
    return;
  }
  if (simplified && e.mode() == ExportMode::ContribOps) {
    // ONNX Runtime registers this contrib op in the default domain (since version 1).
    std::vector<std::string> outs = {out.y, out.inv_std};
    while (outs.back().empty()) outs.pop_back();
    e.op_to("SimplifiedLayerNormalization", {x, scale}, outs,
            {{"axis", axis_attr}, {"epsilon", eps_attr}});
    return;
  }
  std::vector<int64_t> axes;
  if (axis < 0) {
    for (int64_t a = axis; a < 0; ++a) axes.push_back(a);
  } else {
    auto rank = e.rank_of(x);
    check(rank.has_value(), n.label() +
                                ": the input's rank must be known to decompose the "
                                "normalization over axis " +
                                std::to_string(axis));
    for (int64_t a = axis; a < static_cast<int64_t>(*rank); ++a) axes.push_back(a);
  }
  const DType t = e.dtype_of(x);
  std::string centered = x;
  if (!simplified) {
    const std::string mean = e.reduce_mean(x, axes);
    if (!out.mean.empty()) e.finish(mean, out.mean);
    centered = e.op("Sub", {x, out.mean.empty() ? mean : out.mean});
  }
  const std::string var = e.reduce_mean(e.op("Mul", {centered, centered}), axes);
  const std::string stddev = e.op("Sqrt", {e.op("Add", {var, e.scalar(t, eps, "epsilon")})});
  if (!out.inv_std.empty()) e.op_to("Reciprocal", {stddev}, {out.inv_std});
  std::string y = e.op("Mul", {e.op("Div", {centered, stddev}), scale});
  if (!bias.empty()) y = e.op("Add", {y, bias});
  e.finish(y, out.y);
}

std::string decomposed_name(bool simplified, const Emitter& e) {
  if (!simplified && e.opset() >= 17) return "LayerNormalization";
  if (simplified && e.mode() == ExportMode::ContribOps && e.opset() < 23)
    return "SimplifiedLayerNormalization (ONNX Runtime, default domain)";
  if (simplified && e.opset() >= 23) return "RMSNormalization";
  return simplified ? "ReduceMean/Sqrt/Div/Mul" : "ReduceMean/Sub/Sqrt/Div/Mul/Add";
}

}  // namespace

std::string lower_layer_norm(const ir::Node& n, Emitter& e) {
  if (e.opset() >= 17) return "";
  normalize(e, n, n.inputs.at(0), n.inputs.at(1), n.inputs.size() > 2 ? n.inputs[2] : "",
            n.attr_int("axis", -1), n.attr_float("epsilon", 1e-5f), false,
            {n.outputs.at(0), output(n, 1), output(n, 2)});
  return decomposed_name(false, e);
}

std::string lower_rms_norm(const ir::Node& n, Emitter& e) {
  if (e.opset() >= 23) return "";
  normalize(e, n, n.inputs.at(0), n.inputs.at(1), "", n.attr_int("axis", -1),
            n.attr_float("epsilon", 1e-5f), true, {n.outputs.at(0), "", ""});
  return decomposed_name(true, e);
}

// ONNX Runtime's CPU kernels take 2-D or 3-D inputs only; other ranks are decomposed.
std::string lower_skip_layer_norm(const ir::Node& n, Emitter& e) {
  const bool simplified = n.op_type == "SkipSimplifiedLayerNormalization";
  const auto rank = e.rank_of(n.inputs.at(0));
  if (e.mode() == ExportMode::ContribOps && (rank == 2u || rank == 3u)) return "";
  check(n.inputs.size() >= 3, n.label() + ": expected inputs input, skip, gamma");
  const auto input = [&](size_t i) { return i < n.inputs.size() ? n.inputs[i] : ""; };
  const std::string beta = simplified ? "" : input(3);
  const std::string bias = input(simplified ? 3 : 4);
  std::string sum = e.op("Add", {n.inputs[0], n.inputs[1]});
  if (!bias.empty()) sum = e.op("Add", {sum, bias});
  if (const std::string s = output(n, 3); !s.empty()) {
    e.finish(sum, s);
    sum = s;
  }
  normalize(e, n, sum, n.inputs[2], beta, -1, n.attr_float("epsilon", 1e-12f), simplified,
            {n.outputs.at(0), simplified ? "" : output(n, 1), output(n, 2)});
  return "Add+" + decomposed_name(simplified, e);
}

}  // namespace kpt::onnx_export
