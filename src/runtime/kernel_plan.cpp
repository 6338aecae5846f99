#include "runtime/kernel_plan.hpp"

#include "analysis/shape_inference.hpp"
#include "backends/cpu/kernel_registry.hpp"

namespace kpt::runtime {

KernelPlan plan_kernels(ir::Graph& g, Precision precision) {
  analysis::infer_shapes(g);
  KernelPlan plan;
  plan.by_node.resize(g.nodes.size(), nullptr);
  auto type_of = [&g](const std::string& name) -> const ir::Type* {
    if (name.empty()) return nullptr;
    auto it = g.value_types.find(name);
    if (it != g.value_types.end() && it->second.kind != ir::Type::Kind::Unknown) return &it->second;
    for (const auto& i : g.inputs) {
      if (i.name == name) return &i.type;
    }
    return nullptr;
  };
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& node = g.nodes[k];
    cpu::PrepareContext ctx{node, {}, {}, {}, precision};
    for (const auto& name : node.inputs) {
      ctx.input_types.push_back(type_of(name));
      auto init = name.empty() ? g.initializers.end() : g.initializers.find(name);
      ctx.constants.push_back(init != g.initializers.end() ? &init->second : nullptr);
    }
    for (const auto& name : node.outputs) ctx.output_types.push_back(type_of(name));
    auto kernel = cpu::KernelRegistry::instance().prepare(ctx);
    if (kernel) {
      plan.histogram[kernel->name()]++;
      plan.by_node[k] = kernel.get();
      plan.owned.push_back(std::move(kernel));
    } else {
      plan.histogram["reference:" + (node.domain.empty() ? "" : node.domain + ".") +
                     node.op_type]++;
    }
  }
  return plan;
}

}  // namespace kpt::runtime
