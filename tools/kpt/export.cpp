// kpt export MODEL --format onnx -o OUT.onnx: writes the optimized graph as an ONNX model that
// ONNX Runtime runs (src/export/onnx_lowering.hpp), with what kpt did in metadata_props.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "export/onnx_lowering.hpp"
#include "ir/model.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "onnx/write.hpp"
#include "passes/pass.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

// Above this many initializer bytes the weights go to a data file beside the model: protobuf
// cannot hold a message over 2 GB.
constexpr size_t kInlineLimit = size_t{1800} << 20;
// With external data, initializers smaller than this stay inline (shapes, scalars, biases).
constexpr size_t kExternalMinBytes = 1024;

struct Args {
  std::string model;
  std::string format = "onnx";
  std::string output;
  std::string level = "all";
  std::string precision = "fp32";
  bool standard_only = false;
  bool external_data = false;
};

size_t initializer_bytes(const ir::Graph& g) {
  size_t bytes = 0;
  for (const auto& [name, t] : g.initializers) bytes += t.nbytes();
  return bytes;
}

std::string joined_passes(const Session& s) {
  std::string out;
  for (const auto& [pass, count] : s.passes_fired())
    out += (out.empty() ? "" : ",") + pass + ":" + std::to_string(count);
  return out;
}

void run(const Args& a) {
  check(a.format == "onnx", "--format '" + a.format + "': expected onnx");
  SessionOptions options;
  options.optimization = passes::level_from_name(a.level);
  options.fast_kernels = false;  // only the graph is needed
  const Precision precision = parse_precision(a.precision);
  Session session = Session::open(a.model, options);
  ir::Model model = session.model();
  const auto mode =
      a.standard_only ? onnx_export::ExportMode::StandardOnly : onnx_export::ExportMode::ContribOps;
  const onnx_export::LoweringReport report = onnx_export::lower_for_onnx(model, mode);
  model.producer_name = "kpt";
  model.producer_version = KPT_VERSION_STRING;
  model.metadata["kpt.version"] = KPT_VERSION_STRING;
  model.metadata["kpt.source_model"] = std::filesystem::path(a.model).filename().string();
  model.metadata["kpt.optimization_level"] = a.level;
  model.metadata["kpt.passes"] = joined_passes(session);
  // bf16/int8 are choices of the CPU kernels at load time, not ops of the graph.
  model.metadata["kpt.precision"] = "fp32";
  if (precision != Precision::FP32)
    model.metadata["kpt.requested_precision"] = precision_name(precision);

  onnx_write::WriteOptions write;
  write.value_info = false;  // ONNX Runtime infers its own; ours could only disagree
  std::ofstream data;
  int64_t offset = 0;
  const std::string data_name = std::filesystem::path(a.output).filename().string() + ".data";
  const bool external = a.external_data || initializer_bytes(model.graph) > kInlineLimit;
  if (external) {
    const std::string data_path = a.output + ".data";
    data.open(data_path, std::ios::binary | std::ios::trunc);
    check(data.good(), "cannot write external data file " + data_path);
    write.external = [&](const std::string&,
                         const Tensor& t) -> std::optional<onnx_write::ExternalData> {
      if (t.nbytes() < kExternalMinBytes || t.dtype() == DType::String) return std::nullopt;
      data.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
      check(data.good(), "writing external data to " + data_path + " failed");
      onnx_write::ExternalData e{data_name, offset, static_cast<int64_t>(t.nbytes())};
      offset += e.length;
      return e;
    };
  }
  onnx_write::save_model(model, a.output, write);
  std::cout << "wrote " << a.output << (external ? " (weights in " + data_name + ")" : "") << "\n"
            << "mode " << onnx_export::export_mode_name(mode) << ", " << report.explain();
  if (precision != Precision::FP32)
    std::cout << "note: --precision " << precision_name(precision)
              << " chooses kpt's CPU kernels, not graph ops; the exported graph is fp32\n";
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "export", "Write the optimized model as ONNX (fused ops as ONNX Runtime contrib ops)");
  cmd->add_option("model", a->model, "Model file (.onnx or .kpt)")->required();
  cmd->add_option("--format", a->format, "Output format (onnx)");
  cmd->add_option("-o,--output", a->output, "Output file (.onnx)")->required();
  cmd->add_flag("--standard-ops-only", a->standard_only,
                "Write fused ops as standard ONNX ops valid at the model's opset");
  cmd->add_option("--level", a->level, "Optimization level: none, basic, extended or all")
      ->check(CLI::IsMember({"none", "basic", "extended", "all"}));
  cmd->add_option("--precision", a->precision,
                  "fp32, bf16, int8 or auto; recorded only: precision is a kernel choice");
  cmd->add_flag("--external-data", a->external_data,
                "Store weights in OUT.onnx.data (automatic above 1.8 GB)");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
