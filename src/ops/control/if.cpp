// If: runs one of two subgraphs; its outputs become the node's outputs unchanged, so tensors,
// sequences and optionals all pass through.
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void if_kernel(KernelContext& ctx) {
  const Tensor& c = ctx.input(0);
  ctx.check(c.numel() == 1,
            [&] { return "condition must hold exactly one element, got " + c.describe(); });
  const bool cond = c.get_f64(0) != 0;
  const char* branch = cond ? "then_branch" : "else_branch";
  const ir::Graph* g = ctx.node().attr_graph(branch);
  if (!g) ctx.fail(std::string("missing graph attribute '") + branch + "'");
  std::vector<Value> outs = ctx.run_subgraph(*g, {});
  ctx.check(outs.size() >= ctx.node().outputs.size(),
            std::string(branch) + " produces " + std::to_string(outs.size()) +
                " outputs but the node has " + std::to_string(ctx.node().outputs.size()));
  for (size_t i = 0; i < ctx.node().outputs.size(); ++i) ctx.set_output_value(i, outs[i]);
}

}  // namespace

KPT_REGISTER_OP("", "If", 1, if_kernel);

}  // namespace kpt::ops
