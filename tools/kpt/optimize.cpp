// kpt optimize MODEL: runs the graph optimizer and explains what it did; with -o OUT.kpt it
// also prepares the kernels (packing weights, tuning auto precision) and writes an engine file
// that later loads without any of that work (docs/ENGINE_FILE.md).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "engine/engine_target.hpp"
#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/device_executor.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string model;
  std::string level = "all";
  bool explain = false;
  bool print_graph = false;
  std::string output;
  std::string precision;  // default: fp32 on the CPU, fp16 on cuda
  std::string target = "cpu";
  std::string buckets;
};

// "[  1.2 s] step" on stderr as each long step starts.
std::function<void(const std::string&)> progress_printer() {
  const auto start = std::chrono::steady_clock::now();
  return [start](const std::string& step) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "[%6.1f s] %s\n", s, step.c_str());
  };
}

void run(const Args& a) {
  const bool on_gpu = !runtime::parse_target(a.target).is_cpu();
  const std::string precision = !a.precision.empty() ? a.precision : on_gpu ? "fp16" : "fp32";
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  const bool engine = !a.output.empty();
  if (engine) {
    engine::target_for_this_machine(a.target);  // an impossible target fails before the work
    options.precision = parse_precision(precision);
    options.target = a.target;
    options.progress = progress_printer();
    if (!a.buckets.empty()) {
      // Each bucket runs once now, so its memory plan and primitives exist and are stored.
      options.buckets = parse_shape_buckets(a.buckets);
      options.warm_buckets = true;
    }
  } else {
    // Graph passes only: the kernels are not needed to explain them.
    options.fast_kernels = false;
  }
  if (on_gpu && !engine) {
    // Planning needs no device, so no cuda session is opened: the passes run here for the GPU
    // target, as a cuda session runs them at open.
    options.optimization = OptimizationLevel::None;
    Session session = Session::open(a.model, options);
    passes::OptimizeReport report;
    const ir::Graph g =
        runtime::optimize_for_cuda(session.graph(), passes::level_from_name(a.level), &report);
    if (a.explain || !a.print_graph) std::cout << report.explain();
    if (a.print_graph) std::cout << ir::print(g);
    std::cout << "plan for target " << a.target << ", precision " << precision << ": "
              << runtime::describe_cuda_plan(g, parse_precision(precision));
    return;
  }
  Session session = Session::open(a.model, options);
  if (a.explain || (!a.print_graph && !engine)) std::cout << session.optimization_report();
  if (a.print_graph) std::cout << ir::print(session.graph());
  if (on_gpu) {
    std::cout << "plan for target " << a.target << ", precision " << precision << ": "
              << runtime::describe_cuda_plan(session.graph(), parse_precision(precision));
  }
  if (!engine) return;
  if (!session.precision_report().empty()) std::cout << session.precision_report();
  EngineOptions eo;
  eo.target = a.target;
  eo.buckets = a.buckets;
  eo.progress = options.progress;
  session.save_engine(a.output, eo);
  options.progress("done");
  std::printf("wrote %s (%.1f MB, target %s, precision %s)\n", a.output.c_str(),
              static_cast<double>(std::filesystem::file_size(a.output)) / 1e6, a.target.c_str(),
              precision.c_str());
}

}  // namespace

void add_optimize(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "optimize", "Optimize a model's graph and explain the passes; -o writes an engine file");
  cmd->add_option("model", a->model, "Model file (.onnx or .kpt)")->required();
  cmd->add_option("--level", a->level, "none, basic, extended or all (default all)")
      ->check(CLI::IsMember({"none", "basic", "extended", "all"}));
  cmd->add_flag("--explain", a->explain, "Show which passes fired and the op histogram change");
  cmd->add_flag("--graph", a->print_graph, "Print the optimized graph");
  cmd->add_option("-o,--output", a->output,
                  "Write an engine file (.kpt): optimized graph, prepacked weights, plans");
  cmd->add_option("--precision", a->precision,
                  "fp32, bf16, int8 or auto on the CPU (default fp32); fp16 (default), fp8, bf16 "
                  "or fp32 on cuda")
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "auto", "fp16", "fp8"}));
  cmd->add_option("--target", a->target,
                  "cpu (default), cuda or cuda:N: with -o the engine's target; without, cuda "
                  "prints where each node would run");
  cmd->add_option("--buckets", a->buckets,
                  "With -o: shape buckets, e.g. \"batch=1,8,32;seq=128,512\"");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
