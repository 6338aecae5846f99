// Computes nodes whose inputs are all constants with their reference kernels and replaces them
// with initializers: the shape arithmetic and weight transposes exporters leave in graphs.
#include "ops/run_node.hpp"
#include "passes/pass.hpp"
#include "passes/rewrite_util.hpp"

namespace kpt::passes {
namespace {

// Folding may grow the model: a result larger than this many elements (and larger than its
// inputs together) stays a node.
constexpr int64_t kMaxGrowthElements = int64_t{1} << 16;

class ConstantFolding : public Pass {
 public:
  std::string name() const override { return "constant_folding"; }
  Level level() const override { return Level::Basic; }
  int run(ir::Graph& g) override {
    int folded = 0;
    std::vector<ir::Node> kept;
    for (auto& n : g.nodes) {
      if (!fold(g, n)) {
        kept.push_back(std::move(n));
      } else {
        ++folded;
      }
    }
    g.nodes = std::move(kept);
    return folded;
  }

 private:
  static bool fold(ir::Graph& g, const ir::Node& n) {
    if (ops::is_nondeterministic(n) || has_subgraph(n) || n.inputs.empty()) return false;
    std::vector<Value> values;
    values.reserve(n.inputs.size());
    int64_t input_elements = 0;
    for (const auto& i : n.inputs) {
      if (i.empty()) {
        values.push_back(Value::none());
        continue;
      }
      const Tensor* t = constant_initializer(g, i);
      if (!t) return false;
      values.push_back(Value::of(*t));
      input_elements += t->numel();
    }
    std::vector<const Value*> in;
    for (size_t k = 0; k < values.size(); ++k)
      in.push_back(n.inputs[k].empty() ? nullptr : &values[k]);
    std::vector<Value> out;
    try {
      out = ops::run_node(n, std::move(in), nullptr);
    } catch (const Error&) {
      return false;  // left for the run, which reports the error where the user sees it
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (n.outputs[k].empty()) continue;
      if (!out[k].is_tensor()) return false;
      if (out[k].tensor.numel() > kMaxGrowthElements && out[k].tensor.numel() > input_elements) {
        return false;
      }
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (!n.outputs[k].empty()) g.initializers[n.outputs[k]] = std::move(out[k].tensor);
    }
    return true;
  }
};

}  // namespace
KPT_REGISTER_PASS(20, ConstantFolding);
}  // namespace kpt::passes
