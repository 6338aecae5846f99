// kpt optimize MODEL: runs the graph optimizer and explains what it did.
#include <iostream>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string model;
  std::string level = "all";
  bool explain = false;
  bool print_graph = false;
};

void run(const Args& a) {
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  Session session = Session::open(a.model, options);
  if (a.explain || !a.print_graph) std::cout << session.optimization_report();
  if (a.print_graph) std::cout << ir::print(session.graph());
}

}  // namespace

void add_optimize(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("optimize", "Optimize a model's graph and explain the passes");
  cmd->add_option("model", a->model, "Model file (.onnx)")->required();
  cmd->add_option("--level", a->level, "none, basic, extended or all (default all)")
      ->check(CLI::IsMember({"none", "basic", "extended", "all"}));
  cmd->add_flag("--explain", a->explain, "Show which passes fired and the op histogram change");
  cmd->add_flag("--graph", a->print_graph, "Print the optimized graph");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
