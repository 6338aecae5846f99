#include "analysis/load_for_analysis.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/engine_file.hpp"
#include "kpt/error.hpp"
#include "onnx/import.hpp"
#include "onnx/onnx.pb.h"

namespace kpt::analysis {

namespace {

std::vector<StrippedWeight> parse_stripped(const std::string& text) {
  std::vector<StrippedWeight> out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(std::string("metadata 'stripped_initializers' is not valid JSON: ") + e.what());
  }
  check(j.is_array(), "metadata 'stripped_initializers' must be a JSON array");
  for (const auto& item : j) {
    StrippedWeight w;
    w.name = item.value("name", "");
    w.dtype = static_cast<DType>(item.value("data_type", 0));
    w.dims = item.value("dims", Dims{});
    check(!w.name.empty() && is_valid_dtype(static_cast<int32_t>(w.dtype)),
          "metadata 'stripped_initializers' has an entry without a name or valid data_type");
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

AnalysisModel load_for_analysis(const std::string& path) {
  if (engine::is_engine_file(path)) {
    // No target check: an engine can be inspected on any machine.
    const engine::EngineFile file = engine::open_engine(path, {.verify_weights = false});
    const std::string_view weights = file.section(engine::SectionKind::Weights);
    const onnx_import::ExternalResolver resolver = [&](const std::string&) {
      return onnx_import::MappedBytes{weights.data(), weights.size(), file.mapping};
    };
    AnalysisModel result;
    result.model = onnx_import::import_bytes(std::string(file.section(engine::SectionKind::Graph)),
                                             "", {}, &resolver);
    result.engine_metadata = std::string(file.section(engine::SectionKind::Metadata));
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open model file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";

  onnx::ModelProto proto;
  check(proto.ParseFromString(bytes), path + ": not a valid ONNX file (protobuf parsing failed)");
  std::vector<StrippedWeight> stripped;
  for (const auto& kv : proto.metadata_props()) {
    if (kv.key() == "stripped_initializers") stripped = parse_stripped(kv.value());
  }
  std::set<std::string> present;
  for (const auto& t : proto.graph().initializer()) present.insert(t.name());
  std::erase_if(stripped, [&](const StrippedWeight& w) { return present.count(w.name) != 0; });

  AnalysisModel result;
  if (stripped.empty()) {
    result.model = onnx_import::import_file(path);
    return result;
  }
  for (const auto& w : stripped) {
    auto* input = proto.mutable_graph()->add_input();
    input->set_name(w.name);
    auto* tensor_type = input->mutable_type()->mutable_tensor_type();
    tensor_type->set_elem_type(static_cast<int32_t>(w.dtype));
    auto* shape = tensor_type->mutable_shape();
    for (int64_t d : w.dims) shape->add_dim()->set_dim_value(d);
  }
  proto.SerializeToString(&bytes);
  try {
    result.model = onnx_import::import_bytes(bytes, dir);
  } catch (const Unsupported& e) {
    throw Unsupported(path + ": " + e.what());
  } catch (const Error& e) {
    fail(path + ": " + e.what());
  }
  std::set<std::string> names;
  for (const auto& w : stripped) names.insert(w.name);
  auto& inputs = result.model.graph.inputs;
  for (const auto& i : inputs) {
    if (names.count(i.name)) result.model.graph.value_types[i.name] = i.type;
  }
  std::erase_if(inputs, [&](const ir::ValueInfo& i) { return names.count(i.name) != 0; });
  result.stripped = std::move(stripped);
  return result;
}

}  // namespace kpt::analysis
