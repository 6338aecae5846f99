#include "ops/run_node.hpp"

#include <set>

namespace kpt::ops {

namespace {
const OpEntry& reference_entry(const ir::Node& node) {
  const OpEntry* entry = Registry::instance().find(node.domain, node.op_type, node.opset);
  if (!entry || !entry->kernel) {
    unsupported(node.label() + ": op " + (node.domain.empty() ? "" : node.domain + ".") +
                node.op_type + " (opset " + std::to_string(node.opset) + ") is not supported");
  }
  return *entry;
}
}  // namespace

void run_reference(KernelContext& ctx) {
  reference_entry(ctx.node()).kernel(ctx);
}

std::vector<Value> run_node(const ir::Node& node, std::vector<const Value*> inputs,
                            const SubgraphRunner* run_subgraph, const Kernel* prepared,
                            const KernelContext::OutputAllocator* allocator) {
  const OpEntry* entry = prepared ? nullptr : &reference_entry(node);
  std::vector<Value> out(node.outputs.size());
  KernelContext ctx(node, std::move(inputs), out, run_subgraph);
  ctx.set_output_allocator(allocator);
  try {
    if (prepared) {
      prepared->run(ctx);
    } else {
      entry->kernel(ctx);
    }
  } catch (const Unsupported&) {
    throw;
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.find(node.label()) == std::string::npos) msg = node.label() + ": " + msg;
    fail(msg);
  } catch (const std::bad_alloc&) {
    fail(node.label() + ": out of memory");
  }
  return out;
}

bool is_nondeterministic(const ir::Node& node) {
  static const std::set<std::string> random_ops = {
      "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli",
      "Multinomial",   "Dropout"};
  return node.domain.empty() && random_ops.count(node.op_type) != 0;
}

}  // namespace kpt::ops
