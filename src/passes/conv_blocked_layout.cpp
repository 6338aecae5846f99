// Keeps chains of float convolutions in the channel-blocked layout (kpt Blocked16Conv,
// see src/ops/vision/blocked_conv.cpp): each Conv / FusedConv whose input and output channels
// are multiples of 16 reads and writes blocked tensors, and a layout conversion is inserted
// only where a value enters the chain (ToBlocked16, once per value) or leaves it
// (FromBlocked16, for readers other than blocked convolutions, graph outputs and subgraphs).
// On ResNet-50 this removes ~100 per-convolution layout conversions, about a fifth of the
// run time. Level all: a layout decision for the CPU kernels, not a simplification.
#include <map>
#include <set>

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

constexpr int64_t kBlock = 16;

bool is_conv(const ir::Node& n) {
  return (n.domain.empty() && n.op_type == "Conv") ||
         (n.domain == "com.microsoft" && n.op_type == "FusedConv");
}

// Float32 N x C x H x W with C a known multiple of 16.
bool blockable(const ir::Graph& g, const std::string& v) {
  const ir::Type* t = g.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor || t->elem != DType::F32 || !t->shape) return false;
  const ir::Shape& s = *t->shape;
  return s.size() == 4 && s[1].known() && s[1].value % kBlock == 0;
}

bool convertible(const ir::Graph& g, const ir::Node& n) {
  if (!is_conv(n) || n.outputs.size() != 1 || n.inputs.size() < 2 || has_subgraph(n)) return false;
  const Tensor* w = constant_initializer(g, n.inputs[1]);
  if (!w || w->dtype() != DType::F32 || w->rank() != 4) return false;
  if (!blockable(g, n.inputs[0]) || !blockable(g, n.outputs[0])) return false;
  return n.inputs.size() < 4 || n.inputs[3].empty() || blockable(g, n.inputs[3]);
}

class ConvBlockedLayout : public Pass {
 public:
  std::string name() const override { return "conv_blocked_layout"; }
  Level level() const override { return Level::All; }
  bool cpu_layout() const override { return true; }
  int run(ir::Graph& g) override {
    int candidates = 0;
    for (const auto& n : g.nodes) candidates += is_conv(n);
    if (candidates < 2) return 0;
    try {
      analysis::infer_shapes(g);
    } catch (const Error&) {
      return 0;
    }
    std::vector<bool> convert(g.nodes.size());
    int count = 0;
    for (size_t i = 0; i < g.nodes.size(); ++i) count += convert[i] = convertible(g, g.nodes[i]);
    // A lone convolution gains nothing: its conversions would just move out of the kernel.
    if (count < 2) return 0;

    // Values read in plain layout: by any other node input, graph outputs, subgraphs.
    std::set<std::string> plain_readers;
    for (const auto& o : g.outputs) plain_readers.insert(o.name);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const ir::Node& n = g.nodes[i];
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        if (!convert[i] || (k != 0 && k != 3)) plain_readers.insert(n.inputs[k]);
      }
      for (const auto& [name, a] : n.attrs) {
        if (a.g) plain_readers.merge(ir::outer_uses(*a.g));
        for (const auto& sg : a.graphs) plain_readers.merge(ir::outer_uses(*sg));
      }
    }

    std::set<std::string> taken;
    for (const auto& v : g.defined_values()) taken.insert(v);
    auto fresh = [&taken](const std::string& base) {
      std::string name = base;
      for (int k = 1; taken.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
      taken.insert(name);
      return name;
    };
    auto make = [](const char* op, const std::string& name, std::string in, std::string out) {
      ir::Node n;
      n.op_type = op;
      n.domain = "kpt";
      n.opset = 1;
      n.name = name;
      n.inputs = {std::move(in)};
      n.outputs = {std::move(out)};
      return n;
    };

    std::map<std::string, std::string> blocked;  // plain value -> its blocked twin
    std::vector<ir::Node> out;
    out.reserve(g.nodes.size() + 8);
    auto blocked_of = [&](const std::string& v) {
      auto it = blocked.find(v);
      if (it != blocked.end()) return it->second;
      const std::string b = fresh(v + "_blocked16");
      out.push_back(make("ToBlocked16", b + "_reorder", v, b));
      blocked[v] = b;
      return b;
    };
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      ir::Node n = std::move(g.nodes[i]);
      if (!convert[i]) {
        out.push_back(std::move(n));
        continue;
      }
      n.inputs[0] = blocked_of(n.inputs[0]);
      if (n.inputs.size() > 3 && !n.inputs[3].empty()) n.inputs[3] = blocked_of(n.inputs[3]);
      const std::string y = n.outputs[0];
      const std::string yb = fresh(y + "_blocked16");
      n.outputs[0] = yb;
      n.op_type = "Blocked16Conv";
      n.domain = "kpt";
      n.opset = 1;
      blocked[y] = yb;
      out.push_back(std::move(n));
      if (plain_readers.count(y) != 0) out.push_back(make("FromBlocked16", yb + "_reorder", yb, y));
      g.value_types.erase(y);
    }
    g.nodes = std::move(out);
    g.opsets.emplace("kpt", 1);
    return count;
  }
};

}  // namespace
KPT_REGISTER_PASS(46, ConvBlockedLayout);
}  // namespace kpt::passes
