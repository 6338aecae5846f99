#pragma once
#include <string>

#include "ops/registry.hpp"

namespace kpt::ops {

// A kernel prepared for one node when a session loads (weights prepacked, algorithm chosen),
// as opposed to the registry's stateless reference kernels. Backends implement it; the executor
// calls it in place of the reference kernel. run() may be called from several threads at once,
// so state it changes after preparation must be guarded.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(KernelContext& ctx) const = 0;
  // What runs, for reports: "dnnl.matmul(bf16)", "cpu.attention(flash)".
  virtual std::string name() const = 0;
};

}  // namespace kpt::ops
