// Removes Identity nodes (and inference-mode Dropout without a mask output) by making their
// readers read the input directly.
#include "passes/pass.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

bool is_passthrough(const ir::Node& n) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty())
    return false;
  if (n.op_type == "Identity") return n.outputs.size() == 1;
  if (n.op_type == "Dropout") {
    // With training_mode given as an input the node may drop; a mask output must be computed.
    bool mask_wanted = n.outputs.size() > 1 && !n.outputs[1].empty();
    bool training_input = n.inputs.size() > 2 && !n.inputs[2].empty();
    return !mask_wanted && !training_input;
  }
  return false;
}

class IdentityElimination : public Pass {
 public:
  std::string name() const override { return "identity_elimination"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    int removed = 0;
    std::vector<ir::Node> kept;
    for (auto& n : g.nodes) {
      if (is_passthrough(n) && !is_graph_output(g, n.outputs[0])) {
        replace_uses(g, n.outputs[0], n.inputs[0]);
        ++removed;
        continue;
      }
      kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    return removed;
  }
};

}  // namespace
KPT_REGISTER_PASS(10, IdentityElimination);
}  // namespace kpt::passes
