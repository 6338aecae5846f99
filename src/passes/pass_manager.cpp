#include "passes/pass_manager.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "kpt/error.hpp"
#include "passes/lower_gradient.hpp"

namespace kpt::passes {

Level level_from_name(const std::string& name) {
  if (name == "none") return Level::None;
  if (name == "basic") return Level::Basic;
  if (name == "extended") return Level::Extended;
  if (name == "all") return Level::All;
  fail("unknown optimization level '" + name + "'; expected none, basic, extended or all");
}

std::string level_name(Level level) {
  switch (level) {
    case Level::None:
      return "none";
    case Level::Basic:
      return "basic";
    case Level::Extended:
      return "extended";
    default:
      return "all";
  }
}

PassRegistry& PassRegistry::instance() {
  static PassRegistry r;
  return r;
}

void PassRegistry::add(int order, PassFactory factory) {
  factories_.emplace_back(order, factory);
}

std::vector<std::unique_ptr<Pass>> PassRegistry::create() const {
  auto sorted = factories_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::unique_ptr<Pass>> passes;
  for (const auto& [order, f] : sorted) passes.push_back(f());
  return passes;
}

std::map<std::string, int> op_histogram(const ir::Graph& g) {
  std::map<std::string, int> h;
  for (const auto& n : g.nodes) h[(n.domain.empty() ? "" : n.domain + ".") + n.op_type]++;
  return h;
}

OptimizeReport optimize(ir::Graph& g, Level level, PassTarget target, int max_rounds) {
  OptimizeReport report;
  report.level = level;
  report.ops_before = op_histogram(g);
  if (int lowered = lower_gradients(g)) report.applied.push_back({"lower_gradient", lowered, 0});
  if (level != Level::None) {
    auto passes = PassRegistry::instance().create();
    std::erase_if(passes, [&](const auto& p) {
      return p->level() > level || (target != PassTarget::Cpu && p->cpu_layout());
    });
    for (int round = 0; round < max_rounds; ++round) {
      ++report.rounds;
      int changed = 0;
      for (auto& p : passes) {
        auto start = std::chrono::steady_clock::now();
        int n = p->run(g);
        double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        auto it = std::find_if(report.applied.begin(), report.applied.end(),
                               [&](const PassRecord& r) { return r.pass == p->name(); });
        if (it == report.applied.end()) {
          report.applied.push_back({p->name(), n, ms});
        } else {
          it->rewrites += n;
          it->milliseconds += ms;
        }
        changed += n;
      }
      if (!changed) break;
    }
    ir::sort_and_verify(g);
  }
  report.ops_after = op_histogram(g);
  return report;
}

std::string OptimizeReport::explain() const {
  std::string s =
      "optimization level " + level_name(level) + ", " + std::to_string(rounds) + " round(s)\n";
  for (const auto& r : applied) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-28s %6d rewrite(s) %9.2f ms%s\n", r.pass.c_str(),
                  r.rewrites, r.milliseconds, r.rewrites ? "  (fired)" : "");
    s += line;
  }
  std::set<std::string> ops;
  for (const auto& [k, v] : ops_before) ops.insert(k);
  for (const auto& [k, v] : ops_after) ops.insert(k);
  int before = 0, after = 0;
  s += "op histogram (before -> after):\n";
  for (const auto& op : ops) {
    int b = ops_before.count(op) ? ops_before.at(op) : 0;
    int a = ops_after.count(op) ? ops_after.at(op) : 0;
    before += b;
    after += a;
    char line[160];
    std::snprintf(line, sizeof line, "  %-28s %6d -> %-6d%s\n", op.c_str(), b, a,
                  a != b ? " *" : "");
    s += line;
  }
  s += "  total nodes " + std::to_string(before) + " -> " + std::to_string(after) + "\n";
  return s;
}

}  // namespace kpt::passes
