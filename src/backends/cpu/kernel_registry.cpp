#include "backends/cpu/kernel_registry.hpp"

#include <algorithm>

namespace kpt::cpu {

KernelRegistry& KernelRegistry::instance() {
  static KernelRegistry r;
  return r;
}

void KernelRegistry::add(KernelEntry e) {
  entries_.push_back(std::move(e));
  std::stable_sort(
      entries_.begin(), entries_.end(),
      [](const KernelEntry& a, const KernelEntry& b) { return a.priority > b.priority; });
}

std::unique_ptr<ops::Kernel> KernelRegistry::prepare(const PrepareContext& ctx) const {
  for (const auto& e : entries_) {
    if (e.domain != ctx.node.domain || e.op_type != ctx.node.op_type) continue;
    if (auto k = e.prepare(ctx)) return k;
  }
  return nullptr;
}

}  // namespace kpt::cpu
