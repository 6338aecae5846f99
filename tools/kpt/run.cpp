// kpt run MODEL: runs a model once and writes its outputs as .npy.
#include <filesystem>
#include <iostream>

#include "core/npy.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "passes/pass.hpp"
#include "runtime/random_inputs.hpp"
#include "tools/kpt/commands.hpp"
#include "tools/kpt/summary.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> shapes;
  bool random = false;
  uint64_t seed = 0;
  std::string output_dir;
  std::string level = "all";
  bool repack = false;
  std::string buckets;
};

std::pair<std::string, std::string> split_assignment(const std::string& s, const char* flag) {
  auto eq = s.find('=');
  check(eq != std::string::npos && eq > 0, std::string(flag) + " '" + s + "': expected NAME=VALUE");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

void run(const Args& a) {
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  options.repack_engine = a.repack;
  if (!a.buckets.empty()) options.buckets = parse_shape_buckets(a.buckets);
  Session session = Session::open(a.model, options);
  std::cout << session.buckets_report();
  std::map<std::string, Value> inputs;
  for (const auto& s : a.inputs) {
    auto [name, file] = split_assignment(s, "--input");
    inputs[name] = Value::of(read_npy(file));
  }
  std::map<std::string, Dims> shapes;
  for (const auto& s : a.shapes) {
    auto [name, dims] = split_assignment(s, "--shape");
    shapes[name] = runtime::parse_dims(dims);
  }
  uint64_t seed = a.seed;
  for (const auto& info : session.inputs()) {
    if (inputs.count(info.name)) continue;
    check(a.random, "missing input '" + info.name + "'; give it with --input " + info.name +
                        "=FILE.npy or use --random");
    auto it = shapes.find(info.name);
    Tensor t = it != shapes.end() ? runtime::random_tensor(info.dtype, it->second, seed++)
                                  : runtime::random_input(info, {}, seed++);
    std::cout << "input  " << info.name << " = random " << t.describe() << "\n";
    inputs[info.name] = Value::of(t);
  }
  auto outputs = session.run(inputs);
  if (!a.buckets.empty()) {
    const BucketStats b = session.bucket_stats();
    std::cout << "bucket "
              << (b.padded_runs   ? "padded up to a bucket's shape, outputs sliced back"
                  : b.bucket_runs ? "ran at a bucket's shape"
                                  : "outside the buckets: ran at its exact shape")
              << "\n";
  }
  if (!a.output_dir.empty()) std::filesystem::create_directories(a.output_dir);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& name = session.outputs()[i].name;
    std::cout << "output " << name << ": " << summarize(outputs[i]) << "\n";
    if (!a.output_dir.empty() && outputs[i].is_tensor()) {
      std::string safe = name;
      for (char& c : safe) {
        if (c == '/' || c == '\\' || c == ':') c = '_';
      }
      write_npy((std::filesystem::path(a.output_dir) / (safe + ".npy")).string(),
                outputs[i].tensor);
    }
  }
}

}  // namespace

void add_run(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "Run a model once and write its outputs");
  cmd->add_option("model", a->model, "Model file (.onnx) or engine file (.kpt)")->required();
  cmd->add_flag("--repack", a->repack,
                "Engine built on another CPU/oneDNN: repack its weights instead of refusing");
  cmd->add_option("--input", a->inputs, "NAME=FILE.npy (repeatable)");
  cmd->add_option("--shape", a->shapes, "NAME=DIMS for --random inputs, e.g. x=1x3x224x224");
  cmd->add_flag("--random", a->random, "Fill inputs not given with random values");
  cmd->add_option("--seed", a->seed, "Seed for --random (default 0)");
  cmd->add_option("--output-dir", a->output_dir, "Write each output as NAME.npy here");
  cmd->add_option("--level", a->level,
                  "Optimization level: none, basic, extended, all (default all); comparing "
                  "outputs across levels checks the optimizer");
  cmd->add_option("--buckets", a->buckets,
                  "Shape buckets, like \"batch=1,8;seq=128,512\" (see kpt bench --help)");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
