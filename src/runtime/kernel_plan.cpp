#include "runtime/kernel_plan.hpp"

#include "analysis/shape_inference.hpp"
#include "backends/cpu/kernel_registry.hpp"

namespace kpt::runtime {

namespace {
const ir::Type* type_of(const ir::Graph& g, const std::string& name) {
  if (name.empty()) return nullptr;
  auto it = g.value_types.find(name);
  if (it != g.value_types.end() && it->second.kind != ir::Type::Kind::Unknown) return &it->second;
  for (const auto& i : g.inputs) {
    if (i.name == name) return &i.type;
  }
  return nullptr;
}
}  // namespace

std::unique_ptr<ops::Kernel> prepare_node(const ir::Graph& g, size_t k, Precision precision,
                                          cpu::PackedWeights* packed) {
  const ir::Node& node = g.nodes[k];
  cpu::PrepareContext ctx{node, {}, {}, {}, precision, packed};
  for (const auto& name : node.inputs) {
    ctx.input_types.push_back(type_of(g, name));
    auto init = name.empty() ? g.initializers.end() : g.initializers.find(name);
    ctx.constants.push_back(init != g.initializers.end() ? &init->second : nullptr);
  }
  for (const auto& name : node.outputs) ctx.output_types.push_back(type_of(g, name));
  return cpu::KernelRegistry::instance().prepare(ctx);
}

void count_kernels(const ir::Graph& g, KernelPlan& plan) {
  plan.histogram.clear();
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& node = g.nodes[k];
    if (plan.by_node[k]) {
      plan.histogram[plan.by_node[k]->name()]++;
    } else {
      plan.histogram["reference:" + (node.domain.empty() ? "" : node.domain + ".") +
                     node.op_type]++;
    }
  }
}

KernelPlan plan_kernels(ir::Graph& g, Precision precision, cpu::PackedWeights* packed,
                        const std::map<std::string, Precision>* per_node) {
  analysis::infer_shapes(g);
  KernelPlan plan;
  plan.by_node.resize(g.nodes.size(), nullptr);
  // Auto starts from fp32 everywhere; auto_precision lowers layers afterwards.
  const Precision base = precision == Precision::Auto ? Precision::FP32 : precision;
  plan.precision_by_node.resize(g.nodes.size(), base);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Precision p = base;
    if (per_node && !g.nodes[k].outputs.empty()) {
      auto it = per_node->find(g.nodes[k].outputs[0]);
      if (it != per_node->end()) p = it->second;
    }
    plan.precision_by_node[k] = p;
    if (auto kernel = prepare_node(g, k, p, packed)) {
      plan.by_node[k] = kernel.get();
      plan.owned.push_back(std::move(kernel));
    }
  }
  count_kernels(g, plan);
  return plan;
}

}  // namespace kpt::runtime
