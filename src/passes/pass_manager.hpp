#pragma once
#include <map>
#include <string>
#include <vector>

#include "passes/pass.hpp"

namespace kpt::passes {

struct PassRecord {
  std::string pass;
  int rewrites = 0;
  double milliseconds = 0;
};

struct OptimizeReport {
  Level level = Level::All;
  std::vector<PassRecord> applied;  // every pass that ran, in order, with its rewrites
  std::map<std::string, int> ops_before, ops_after;
  int rounds = 0;
  std::string explain() const;  // readable: passes that fired and the op histogram change
};

// Runs the registered passes up to `level`, repeating the sequence until a round changes
// nothing (at most `max_rounds`), then verifies the graph. Passes marked cpu_layout() run only
// for PassTarget::Cpu.
OptimizeReport optimize(ir::Graph& g, Level level, PassTarget target = PassTarget::Cpu,
                        int max_rounds = 4);

std::map<std::string, int> op_histogram(const ir::Graph& g);

}  // namespace kpt::passes
