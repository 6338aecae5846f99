// kpt optimize MODEL: runs the graph optimizer and explains what it did.
#include <iostream>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass.hpp"
#include "runtime/device_executor.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string model;
  std::string level = "all";
  bool explain = false;
  bool print_graph = false;
  std::string target = "cpu";
  std::string precision = "fp16";
};

void run(const Args& a) {
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  Session session = Session::open(a.model, options);
  if (a.explain || !a.print_graph) std::cout << session.optimization_report();
  if (a.print_graph) std::cout << ir::print(session.graph());
  if (!runtime::parse_target(a.target).is_cpu()) {
    std::cout << "plan for target " << a.target << ", precision " << a.precision << ": "
              << runtime::describe_cuda_plan(session.graph(), parse_precision(a.precision));
  }
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
  cmd->add_option("--target", a->target, "cuda or cuda:N: also print where each node would run");
  cmd->add_option("--precision", a->precision, "with --target cuda: fp16 (default), bf16, fp32");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
