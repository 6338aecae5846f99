// Merges nodes that compute the same op on the same inputs with the same attributes, and
// small identical constants, which exporters repeat for every layer.
#include <cstring>
#include <map>

#include "ops/run_node.hpp"
#include "passes/pass.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

constexpr int64_t kMaxMergedConstantElements = 4096;

std::string tensor_key(const Tensor& t) {
  std::string k = t.describe() + ":";
  if (t.dtype() == DType::String) {
    for (const auto& s : t.strings()) k += std::to_string(s.size()) + ":" + s;
  } else {
    k.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
  return k;
}

// Empty when the node cannot be keyed (subgraphs, random ops).
std::string node_key(const ir::Node& n) {
  if (has_subgraph(n) || ops::is_nondeterministic(n)) return "";
  std::string k = n.domain + "|" + n.op_type + "|" + std::to_string(n.opset) + "|" +
                  std::to_string(n.outputs.size()) + "|";
  for (const auto& i : n.inputs) k += i + ",";
  for (const auto& [name, a] : n.attrs) {
    k += "|" + name + "=" + std::to_string(static_cast<int>(a.kind)) + ":";
    switch (a.kind) {
      case ir::Attribute::Kind::Float:
        k.append(reinterpret_cast<const char*>(&a.f), sizeof a.f);
        break;
      case ir::Attribute::Kind::Int:
        k += std::to_string(a.i);
        break;
      case ir::Attribute::Kind::String:
        k += std::to_string(a.s.size()) + ":" + a.s;
        break;
      case ir::Attribute::Kind::Floats:
        k.append(reinterpret_cast<const char*>(a.floats.data()), a.floats.size() * sizeof(float));
        break;
      case ir::Attribute::Kind::Ints:
        for (auto v : a.ints) k += std::to_string(v) + ",";
        break;
      case ir::Attribute::Kind::Strings:
        for (const auto& s : a.strings) k += std::to_string(s.size()) + ":" + s;
        break;
      case ir::Attribute::Kind::Tensor:
        k += tensor_key(a.t);
        break;
      default:
        return "";  // kinds not compared here are never merged
    }
  }
  return k;
}

class CommonSubexpressionElimination : public Pass {
 public:
  std::string name() const override { return "common_subexpression_elimination"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    int merged = merge_constants(g);
    std::map<std::string, size_t> seen;
    std::vector<ir::Node> kept;
    for (auto& n : g.nodes) {
      std::string key = node_key(n);
      if (!key.empty()) {
        auto it = seen.find(key);
        if (it != seen.end() && can_replace_outputs(g, n)) {
          const ir::Node& first = kept[it->second];
          for (size_t k = 0; k < n.outputs.size(); ++k) {
            if (!n.outputs[k].empty()) replace_uses(g, n.outputs[k], first.outputs[k]);
          }
          ++merged;
          continue;
        }
        if (it == seen.end()) seen[key] = kept.size();
      }
      kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    return merged;
  }

 private:
  // A graph output keeps its own name, so its producer is never merged away.
  static bool can_replace_outputs(const ir::Graph& g, const ir::Node& n) {
    for (const auto& o : n.outputs) {
      if (!o.empty() && is_graph_output(g, o)) return false;
    }
    return true;
  }

  static int merge_constants(ir::Graph& g) {
    std::map<std::string, std::string> first_by_content;
    std::vector<std::pair<std::string, std::string>> replace;
    for (const auto& [name, t] : g.initializers) {
      if (t.numel() > kMaxMergedConstantElements || !constant_initializer(g, name) ||
          is_graph_output(g, name)) {
        continue;
      }
      auto [it, inserted] = first_by_content.emplace(tensor_key(t), name);
      if (!inserted) replace.emplace_back(name, it->second);
    }
    for (const auto& [from, to] : replace) {
      replace_uses(g, from, to);
      g.initializers.erase(from);
    }
    return static_cast<int>(replace.size());
  }
};

}  // namespace
KPT_REGISTER_PASS(30, CommonSubexpressionElimination);
}  // namespace kpt::passes
