// kpt validate REFERENCE CANDIDATE: runs both models on the same inputs and says, per output,
// how far the candidate is from the reference; exits non-zero beyond tolerance.
#include <cstdio>

#include "core/compare.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tools/kpt/commands.hpp"
#include "tools/kpt/input_specs.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string reference, candidate;
  std::vector<std::string> inputs;
  double rtol = 1e-3, atol = 1e-4, min_cosine = 0;
  std::string precision = "fp32";
  uint64_t seed = 1;
  bool repack = false;
  bool random = true;
};

int validate(const Args& a) {
  // The reference runs as written: no passes, plain reference kernels.
  SessionOptions ref_options;
  ref_options.optimization = OptimizationLevel::None;
  ref_options.fast_kernels = false;
  Session reference = Session::open(a.reference, ref_options);
  SessionOptions cand_options;
  cand_options.precision = parse_precision(a.precision);
  cand_options.repack_engine = a.repack;
  Session candidate = Session::open(a.candidate, cand_options);

  const auto inputs = make_inputs(reference, a.inputs, a.seed);
  std::map<std::string, Value> in;
  for (const auto& [name, t] : inputs) {
    in[name] = Value::of(t);
    std::printf("input   %s %s\n", name.c_str(), t.describe().c_str());
  }
  const auto want = reference.run(in);
  const auto got = candidate.run(in);
  check(want.size() == got.size(), "the reference has " + std::to_string(want.size()) +
                                       " outputs, the candidate " + std::to_string(got.size()));
  bool ok = true;
  std::printf("%-32s %12s %12s %12s %10s  %s\n", "output", "max abs", "max rel", "cosine",
              "mismatch", "verdict");
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string& name = reference.outputs()[i].name;
    check(candidate.outputs()[i].name == name,
          "output " + std::to_string(i) + " is '" + name + "' in the reference but '" +
              candidate.outputs()[i].name + "' in the candidate");
    if (!want[i].is_tensor() || !got[i].is_tensor()) {
      std::printf("%-32s (not a tensor: compared by kind only)\n", name.c_str());
      if (want[i].kind != got[i].kind) ok = false;
      continue;
    }
    const Agreement ag = compare_outputs(got[i].tensor, want[i].tensor, a.rtol, a.atol);
    const bool pass = ag.shape_error.empty() &&
                      (a.min_cosine > 0 ? ag.cosine >= a.min_cosine : ag.within_tolerance());
    ok = ok && pass;
    if (!ag.shape_error.empty()) {
      std::printf("%-32s %s  FAIL\n", name.c_str(), ag.shape_error.c_str());
      continue;
    }
    std::printf("%-32s %12.3e %12.3e %12.8f %10lld  %s\n", name.c_str(), ag.max_abs, ag.max_rel,
                ag.cosine, static_cast<long long>(ag.mismatches), pass ? "ok" : "FAIL");
  }
  if (a.min_cosine > 0) {
    std::printf("%s: every output needs cosine >= %g\n", ok ? "valid" : "NOT valid", a.min_cosine);
  } else {
    std::printf("%s: every element needs |candidate - reference| <= %g + %g * |reference|\n",
                ok ? "valid" : "NOT valid", a.atol, a.rtol);
  }
  return ok ? 0 : 1;
}

}  // namespace

void add_validate(CLI::App& app) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "validate", "Check that a candidate model computes what a reference model computes");
  cmd->add_option("reference", args->reference, "Reference model (.onnx), run without passes")
      ->required();
  cmd->add_option("candidate", args->candidate,
                  "Candidate model, run optimized (.onnx), or an engine file (.kpt)")
      ->required();
  cmd->add_option("--input", args->inputs,
                  "NAME=FILE.npy or NAME=DIMS (valid random values); others follow from these");
  cmd->add_flag("--random", args->random,
                "Random valid inputs for whatever --input does not give (the default)");
  cmd->add_option("--rtol", args->rtol, "Relative tolerance (default 1e-3)");
  cmd->add_option("--atol", args->atol, "Absolute tolerance (default 1e-4)");
  cmd->add_option("--min-cosine", args->min_cosine,
                  "Judge by cosine similarity instead (for bf16/int8 candidates)");
  cmd->add_option("--precision", args->precision, "Candidate precision: fp32, bf16, int8, auto");
  cmd->add_option("--seed", args->seed, "Seed of the random inputs");
  cmd->add_flag("--repack", args->repack,
                "Candidate engine built on another CPU/oneDNN: repack instead of refusing");
  cmd->callback([args] { std::exit(validate(*args)); });
}

}  // namespace kpt::cli
