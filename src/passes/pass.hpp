#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/session.hpp"

namespace kpt::passes {

// How much the optimizer may do. Each pass belongs to the lowest level that runs it.
using Level = OptimizationLevel;
// What the optimized graph will run on: a GPU target skips the CPU-layout passes.
enum class PassTarget { Cpu, Gpu };
Level level_from_name(const std::string& name);  // "none", "basic", "extended", "all"
std::string level_name(Level level);

// A graph rewrite. run() returns how many rewrites it made (0 when the graph is unchanged) and
// must leave the graph valid (topologically sorted, every used value defined).
class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual Level level() const = 0;
  // True for a pass that rewrites into a layout only the CPU kernels read (oneDNN's blocked
  // convolutions): the optimizer skips it when the graph is meant for another target.
  virtual bool cpu_layout() const { return false; }
  virtual int run(ir::Graph& g) = 0;
};

using PassFactory = std::unique_ptr<Pass> (*)();

// The one registry of passes, in the order they run.
class PassRegistry {
 public:
  static PassRegistry& instance();
  void add(int order, PassFactory factory);
  std::vector<std::unique_ptr<Pass>> create() const;  // sorted by order

 private:
  std::vector<std::pair<int, PassFactory>> factories_;
};

struct PassRegistrar {
  PassRegistrar(int order, PassFactory f) { PassRegistry::instance().add(order, f); }
};

// KPT_REGISTER_PASS(10, DeadCodeElimination): lower orders run first.
#define KPT_REGISTER_PASS(order, Type)                                 \
  static const ::kpt::passes::PassRegistrar kpt_pass_registrar_##Type( \
      order, []() -> std::unique_ptr<::kpt::passes::Pass> { return std::make_unique<Type>(); })

}  // namespace kpt::passes
