#include "export/onnx_lowering.hpp"

#include <functional>
#include <limits>
#include <sstream>

#include "analysis/shape_inference.hpp"
#include "export/emitter.hpp"
#include "export/lowerings.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {
namespace {

using Lowering = std::function<std::string(const ir::Node&, Emitter&)>;

const std::map<std::pair<std::string, std::string>, Lowering>& lowerings() {
  static const std::map<std::pair<std::string, std::string>, Lowering> table = {
      {{"kpt", "MatMulBiasAct"}, lower_matmul_bias_act},
      {{"", "Gelu"}, lower_gelu},
      {{"", "SwiGLU"}, lower_swiglu},
      {{"", "LayerNormalization"}, lower_layer_norm},
      {{"", "RMSNormalization"}, lower_rms_norm},
      {{"", "Attention"}, lower_attention},
      {{"", "RotaryEmbedding"}, lower_rotary},
      {{"com.microsoft", "SkipLayerNormalization"}, lower_skip_layer_norm},
      {{"com.microsoft", "SkipSimplifiedLayerNormalization"}, lower_skip_layer_norm},
      {{"com.microsoft", "FusedConv"}, lower_fused_conv},
  };
  return table;
}

// The first opset defining the form of each op that passes create with a newer node opset
// than the model's, for ops whose meaning did not change since (only types were added).
const std::map<std::string, int>& stable_ops() {
  static const std::map<std::string, int> table = {{"Add", 7},
                                                   {"Sub", 7},
                                                   {"Mul", 7},
                                                   {"Div", 7},
                                                   {"And", 7},
                                                   {"Or", 7},
                                                   {"Not", 1},
                                                   {"Transpose", 1},
                                                   {"Cos", 7},
                                                   {"Sin", 7},
                                                   {"Concat", 4},
                                                   {"Range", 11},
                                                   {"Expand", 8},
                                                   {"Reshape", 5},
                                                   {"Gather", 1},
                                                   {"Cast", 6},
                                                   {"Neg", 6},
                                                   {"Equal", 7},
                                                   {"Less", 9},
                                                   {"Identity", 1},
                                                   {"IsNaN", 9},
                                                   {"Sqrt", 6},
                                                   {"Reciprocal", 6},
                                                   {"Relu", 6},
                                                   {"Sigmoid", 6},
                                                   {"Tanh", 6},
                                                   {"Erf", 9},
                                                   {"MatMul", 9},
                                                   {"Where", 9},
                                                   {"Trilu", 14},
                                                   {"ConstantOfShape", 9}};
  return table;
}

std::string node_key(const ir::Node& n) {
  return (n.domain.empty() ? "" : n.domain + ".") + n.op_type;
}

// Undoes conv_blocked_layout: the layout conversions go, blocked convolutions become FusedConv
// on the plain values again (their names taken back from the conversions).
void undo_blocked_layout(ir::Graph& g) {
  std::map<std::string, std::string> plain;  // blocked value -> plain value
  std::vector<ir::Node> kept;
  for (auto& n : g.nodes) {
    if (n.domain == "kpt" && n.op_type == "ToBlocked16") {
      plain[n.outputs.at(0)] = n.inputs.at(0);
    } else if (n.domain == "kpt" && n.op_type == "FromBlocked16") {
      plain[n.inputs.at(0)] = n.outputs.at(0);
    } else {
      kept.push_back(std::move(n));
    }
  }
  for (auto& n : kept) {
    if (n.domain == "kpt" && n.op_type == "Blocked16Conv") {
      n.domain = "com.microsoft";
      n.op_type = "FusedConv";
      n.opset = 1;
    }
    for (auto* names : {&n.inputs, &n.outputs}) {
      for (auto& v : *names) {
        if (auto it = plain.find(v); it != plain.end()) v = it->second;
      }
    }
  }
  for (const auto& [blocked, p] : plain) g.value_types.erase(blocked);
  g.nodes = std::move(kept);
}

class GraphLowering {
 public:
  GraphLowering(ir::Graph& g, int opset, ExportMode mode, LoweringReport& report)
      : g_(g), opset_(opset), mode_(mode), report_(report) {
    for (const auto& v : g.defined_values()) taken_.insert(v);
    for (const auto& [v, t] : g.value_types) taken_.insert(v);
    for (const auto& o : g.outputs) taken_.insert(o.name);
    for (const auto& n : g.nodes) taken_.insert(n.name);
    for (const auto& v : ir::outer_uses(g)) outer_.push_back(v);
  }

  void run() {
    undo_blocked_layout(g_);
    try {
      analysis::infer_shapes(g_);
    } catch (const Error&) {
      // Lowerings that need a shape say so by name.
    }
    std::vector<ir::Node> out;
    out.reserve(g_.nodes.size());
    for (auto& n : g_.nodes) {
      for (auto& [name, a] : n.attrs) {
        if (a.g) GraphLowering(*a.g, opset_, mode_, report_).run();
        for (auto& sg : a.graphs) GraphLowering(*sg, opset_, mode_, report_).run();
      }
      Emitter e(g_, taken_, opset_, mode_, n.name.empty() ? n.outputs.at(0) : n.name);
      auto it = lowerings().find({n.domain, n.op_type});
      std::string what = it == lowerings().end() ? "" : it->second(n, e);
      if (what.empty()) {
        fit_opset(n, e);
        for (auto& made : e.nodes()) out.push_back(std::move(made));
        out.push_back(std::move(n));
        continue;
      }
      report_.lowered[node_key(n) + " -> " + what] += 1;
      for (auto& made : e.nodes()) out.push_back(std::move(made));
    }
    g_.nodes = std::move(out);
    for (const auto& n : g_.nodes) {
      check(n.domain != "kpt", n.label() + " has no ONNX form: kpt-domain ops are kpt's own");
      check(mode_ == ExportMode::ContribOps || n.domain != "com.microsoft",
            n.label() + " has no standard ONNX form (--standard-ops-only)");
    }
    ir::sort_and_verify(g_, outer_);
    prune();
  }

 private:
  ir::Graph& g_;
  int opset_;
  ExportMode mode_;
  LoweringReport& report_;
  std::set<std::string> taken_;
  std::vector<std::string> outer_;  // values a subgraph reads from enclosing graphs

  // A default-domain node the passes made at a newer opset than the model's, rewritten into
  // the model's opset (Shape's start/end and Unsqueeze/Squeeze's axes input are newer forms).
  void fit_opset(ir::Node& n, Emitter& e) {
    if (!n.domain.empty() || n.opset <= opset_) return;
    if ((n.op_type == "Unsqueeze" || n.op_type == "Squeeze") && opset_ < 13 &&
        n.inputs.size() == 2) {
      auto it = g_.initializers.find(n.inputs[1]);
      check(it != g_.initializers.end(),
            n.label() + ": axes must be a constant to write it at opset " + std::to_string(opset_));
      n.attrs["axes"] = ir::Attribute::of_ints("axes", it->second.to_i64_vector());
      n.inputs.pop_back();
    } else if (n.op_type == "Shape" && opset_ < 15 && (n.has_attr("start") || n.has_attr("end"))) {
      const int64_t start = n.attr_int("start", 0);
      const int64_t end = n.attr_int("end", std::numeric_limits<int64_t>::max());
      n.attrs.erase("start");
      n.attrs.erase("end");
      const std::string out = n.outputs.at(0);
      n.outputs[0] = e.fresh("full_shape");
      n.opset = opset_;
      // Sorted after the Shape when the graph is verified.
      e.op_to("Slice",
              {n.outputs[0], e.ints({start}, "starts"), e.ints({end}, "ends"), e.ints({0}, "axes")},
              {out});
      return;
    } else {
      auto it = stable_ops().find(n.op_type);
      check(it != stable_ops().end() && it->second <= opset_,
            n.label() + " (opset " + std::to_string(n.opset) +
                ") has no form at the model's opset " + std::to_string(opset_));
    }
    n.opset = opset_;
  }

  // Drops types of values that no longer exist and initializers nothing reads any more.
  void prune() {
    std::set<std::string> used, defined;
    for (const auto& n : g_.nodes) {
      used.insert(n.inputs.begin(), n.inputs.end());
      defined.insert(n.outputs.begin(), n.outputs.end());
      for (const auto& [name, a] : n.attrs) {
        if (a.g) used.merge(ir::outer_uses(*a.g));
        for (const auto& sg : a.graphs) used.merge(ir::outer_uses(*sg));
      }
    }
    for (const auto& o : g_.outputs) used.insert(o.name);
    std::set<std::string> inputs;
    for (const auto& i : g_.inputs) inputs.insert(i.name);
    for (auto it = g_.initializers.begin(); it != g_.initializers.end();) {
      it = used.count(it->first) || inputs.count(it->first) ? std::next(it)
                                                            : g_.initializers.erase(it);
    }
    for (auto it = g_.value_types.begin(); it != g_.value_types.end();) {
      it = defined.count(it->first) || inputs.count(it->first) || used.count(it->first)
               ? std::next(it)
               : g_.value_types.erase(it);
    }
  }
};

bool uses_domain(const ir::Graph& g, const std::string& domain) {
  for (const auto& n : g.nodes) {
    if (n.domain == domain) return true;
    for (const auto& [name, a] : n.attrs) {
      if (a.g && uses_domain(*a.g, domain)) return true;
      for (const auto& sg : a.graphs) {
        if (uses_domain(*sg, domain)) return true;
      }
    }
  }
  return false;
}

}  // namespace

const char* export_mode_name(ExportMode mode) {
  return mode == ExportMode::ContribOps ? "contrib-ops" : "standard-ops-only";
}

std::string LoweringReport::explain() const {
  std::ostringstream s;
  s << "default-domain opset " << target_opset << "\n";
  for (const auto& [what, count] : lowered) s << "  " << count << " x " << what << "\n";
  return s.str();
}

LoweringReport lower_for_onnx(ir::Model& m, ExportMode mode) {
  LoweringReport report;
  auto it = m.opsets.find("");
  check(it != m.opsets.end() && it->second > 0,
        "the model imports no default-domain opset; exporting needs one to write nodes at");
  report.target_opset = it->second;
  GraphLowering(m.graph, report.target_opset, mode, report).run();
  m.opsets.erase("kpt");
  if (uses_domain(m.graph, "com.microsoft")) {
    m.opsets["com.microsoft"] = 1;
  } else {
    m.opsets.erase("com.microsoft");
  }
  m.graph.opsets = m.opsets;
  m.metadata["kpt.export_mode"] = export_mode_name(mode);
  return report;
}

}  // namespace kpt::onnx_export
