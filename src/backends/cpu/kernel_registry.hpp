#pragma once
// The one registry of fast CPU kernels. Each entry offers to prepare a kernel for a node at
// session load; an entry that cannot handle the node (dtype, attributes, unknown weights)
// returns nullptr and the node keeps its reference kernel.
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/packed_weights.hpp"
#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "kpt/tensor.hpp"
#include "ops/kernel.hpp"

namespace kpt::cpu {

struct PrepareContext {
  const ir::Node& node;
  // Types inferred at load (nullptr where unknown or where the input is omitted).
  std::vector<const ir::Type*> input_types;
  // Values known at load: initializers (weights) and folded constants; nullptr otherwise.
  std::vector<const Tensor*> constants;
  // Type of each output as inferred at load (nullptr where unknown).
  std::vector<const ir::Type*> output_types;
  Precision precision = Precision::FP32;
  // Weights packed before (an engine file's, or this session's record of what it packed):
  // kernels that pack look their key up first and store what they pack. nullptr: no store.
  PackedWeights* packed = nullptr;
};

using PrepareFn = std::unique_ptr<ops::Kernel> (*)(const PrepareContext&);

struct KernelEntry {
  std::string domain;
  std::string op_type;
  PrepareFn prepare = nullptr;
  int priority = 0;  // higher is tried first
};

class KernelRegistry {
 public:
  static KernelRegistry& instance();
  void add(KernelEntry e);
  // The kernel of the highest-priority entry that accepts the node, or nullptr.
  std::unique_ptr<ops::Kernel> prepare(const PrepareContext& ctx) const;
  std::vector<KernelEntry> entries() const { return entries_; }

 private:
  std::vector<KernelEntry> entries_;
};

struct KernelRegistrar {
  KernelRegistrar(const char* domain, const char* op, PrepareFn fn, int priority = 0) {
    KernelRegistry::instance().add(KernelEntry{domain, op, fn, priority});
  }
};

// KPT_REGISTER_CPU_KERNEL("", "MatMul", prepare_dnnl_matmul[, priority])
#define KPT_REGISTER_CPU_KERNEL(domain, op, ...)                                             \
  static const ::kpt::cpu::KernelRegistrar KPT_CAT(kpt_cpu_kernel_, __COUNTER__)(domain, op, \
                                                                                 __VA_ARGS__)

}  // namespace kpt::cpu
