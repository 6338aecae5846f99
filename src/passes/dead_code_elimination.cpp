// Removes nodes whose outputs nothing reads, and initializers no node reads.
#include <algorithm>

#include "passes/pass.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

class DeadCodeElimination : public Pass {
 public:
  std::string name() const override { return "dead_code_elimination"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    std::set<std::string> live;
    for (const auto& o : g.outputs) live.insert(o.name);
    std::vector<bool> keep(g.nodes.size(), false);
    for (size_t k = g.nodes.size(); k-- > 0;) {
      const ir::Node& n = g.nodes[k];
      keep[k] = std::any_of(n.outputs.begin(), n.outputs.end(),
                            [&](const std::string& o) { return !o.empty() && live.count(o); });
      if (!keep[k]) continue;
      for (const auto& i : n.inputs) live.insert(i);
      for (const auto& [name, a] : n.attrs) {
        if (a.g) live.merge(ir::outer_uses(*a.g));
        for (const auto& sg : a.graphs) live.merge(ir::outer_uses(*sg));
      }
    }
    int removed = 0;
    std::vector<ir::Node> kept;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      if (keep[k]) {
        kept.push_back(std::move(g.nodes[k]));
      } else {
        ++removed;
      }
    }
    g.nodes = std::move(kept);
    for (auto it = g.initializers.begin(); it != g.initializers.end();) {
      if (!live.count(it->first) && !is_graph_input(g, it->first)) {
        it = g.initializers.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    return removed;
  }
};

}  // namespace
KPT_REGISTER_PASS(90, DeadCodeElimination);
}  // namespace kpt::passes
