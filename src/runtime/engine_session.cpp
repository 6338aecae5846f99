// Sessions to and from engine files (docs/ENGINE_FILE.md): what each section holds.
//   weights  the optimized graph's initializers (those of 256 bytes or more), 64-byte aligned
//   graph    ONNX ModelProto of the optimized graph; its initializers point into `weights`
//   packed   the buffers the kernels packed, 64-byte aligned, for the precisions chosen
//   kernels  JSON: each node's precision (auto's decisions) and opset, the index of `packed`
//   metadata JSON: source model and hash, options, passes, precision report, target, tool
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/engine_file.hpp"
#include "engine/engine_target.hpp"
#include "kpt/error.hpp"
#include "onnx/import.hpp"
#include "onnx/write.hpp"
#include "passes/pass.hpp"
#include "runtime/session_impl.hpp"

namespace kpt {

namespace {

// Smaller initializers stay inline in the graph: a mapping gains nothing for them.
constexpr size_t kExternalMinBytes = 256;
constexpr const char* kWeightsLocation = "weights";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

nlohmann::json auto_json(const runtime::AutoPrecisionResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers) {
    layers.push_back({{"node", l.node},
                      {"op", l.op},
                      {"precision", precision_name(l.precision)},
                      {"kernel", l.kernel},
                      {"cosine", l.cosine},
                      {"fp32_us", l.fp32_us},
                      {"chosen_us", l.chosen_us},
                      {"reason", l.reason}});
  }
  nlohmann::json outputs = nlohmann::json::object();
  for (const auto& [name, c] : r.output_cosine) outputs[name] = c;
  return {{"budget_output_cosine", r.options.output_cosine},
          {"layer_cosine", r.options.layer_cosine},
          {"output_cosine", outputs},
          {"reverted", r.reverted},
          {"layers", layers}};
}

// ONNX gives a domain one opset per model, but our nodes carry their own (a fused node has the
// opset of the op it became, next to nodes imported at an older one), and the importer gives
// every node the model's. The kernel plan section keeps each node's, by first output.
void collect_node_opsets(const ir::Graph& g, nlohmann::json& out) {
  for (const auto& n : g.nodes) {
    if (!n.outputs.empty() && !n.outputs[0].empty()) out[n.outputs[0]] = n.opset;
    for (const auto& [name, a] : n.attrs) {
      if (a.g) collect_node_opsets(*a.g, out);
      for (const auto& sg : a.graphs) collect_node_opsets(*sg, out);
    }
  }
}

void restore_node_opsets(ir::Graph& g, const nlohmann::json& opsets) {
  for (auto& n : g.nodes) {
    if (!n.outputs.empty()) {
      auto it = opsets.find(n.outputs[0]);
      if (it != opsets.end()) n.opset = it->get<int>();
    }
    for (auto& [name, a] : n.attrs) {
      if (a.g) restore_node_opsets(*a.g, opsets);
      for (auto& sg : a.graphs) restore_node_opsets(*sg, opsets);
    }
  }
}

void restore_graph_opsets(ir::Graph& g, const std::map<std::string, int>& opsets) {
  g.opsets = opsets;
  for (auto& n : g.nodes) {
    for (auto& [name, a] : n.attrs) {
      if (a.g) restore_graph_opsets(*a.g, opsets);
      for (auto& sg : a.graphs) restore_graph_opsets(*sg, opsets);
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& path, const char* section) {
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(path + ": engine " + section + " section is not valid JSON: " + e.what());
  }
}

}  // namespace

namespace {

nlohmann::json bucket_plan_json(const BucketPlan& b) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : b.tensors) tensors.push_back({t.node, t.output, t.bytes, t.offset});
  nlohmann::json views = nlohmann::json::array();
  for (const auto& [node, output] : b.expected_views) views.push_back({node, output});
  return {{"sizes", b.sizes},
          {"arena_bytes", b.arena_bytes},
          {"in_place", b.in_place},
          {"tensors", tensors},
          {"expected_views", views}};
}

// The shapes are checked here; whether the placements fit the graph is checked by
// Session::import_bucket_plans.
BucketPlan bucket_plan_from_json(const nlohmann::json& j, const std::string& path) {
  try {
    BucketPlan b;
    b.sizes = j.at("sizes").get<std::map<std::string, int64_t>>();
    b.arena_bytes = j.at("arena_bytes").get<size_t>();
    b.in_place = j.at("in_place").get<int>();
    for (const auto& t : j.at("tensors")) {
      b.tensors.push_back({t.at(0).get<size_t>(), t.at(1).get<size_t>(), t.at(2).get<size_t>(),
                           t.at(3).get<size_t>()});
    }
    for (const auto& v : j.at("expected_views"))
      b.expected_views.emplace_back(v.at(0).get<size_t>(), v.at(1).get<size_t>());
    return b;
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": a bucket plan in the engine is malformed (" + e.what() + ")");
  }
}

}  // namespace

void Session::save_engine(const std::string& path, const EngineOptions& eo) const {
  const Impl& s = *impl_;
  auto progress = [&](const std::string& step) {
    if (eo.progress) eo.progress(step);
  };
  const engine::EngineTarget target = engine::target_for_this_machine(eo.target);
  const auto chosen = s.chosen_packed_prefixes();
  const std::set<std::string> prefixes(chosen.begin(), chosen.end());

  engine::EngineWriter w(path);
  progress("write weights");
  w.begin_section(engine::SectionKind::Weights);
  onnx_write::WriteOptions wo;
  wo.external = [&](const std::string&,
                    const Tensor& t) -> std::optional<onnx_write::ExternalData> {
    if (t.nbytes() < kExternalMinBytes) return std::nullopt;
    const uint64_t at = w.append(t.raw(), t.nbytes(), engine::kBlobAlign);
    return onnx_write::ExternalData{kWeightsLocation, static_cast<int64_t>(at),
                                    static_cast<int64_t>(t.nbytes())};
  };
  const std::string graph = onnx_write::model_to_bytes(s.model, wo);
  w.end_section();

  progress("write graph");
  w.begin_section(engine::SectionKind::Graph);
  w.append(graph.data(), graph.size());
  w.end_section();

  // Prepacked weights are for this CPU's layouts; a GPU engine has none.
  progress("write packed weights");
  nlohmann::json packed_index = nlohmann::json::array();
  w.begin_section(engine::SectionKind::Packed);
  if (target.device == "cpu") {
    for (const auto& [key, bytes] : s.packed->entries()) {
      const auto bar = key.find('|', key.find('|') + 1);
      if (bar == std::string::npos || !prefixes.count(key.substr(0, bar + 1))) continue;
      const uint64_t at = w.append(bytes.data, bytes.size, engine::kBlobAlign);
      packed_index.push_back({{"key", key}, {"offset", at}, {"size", bytes.size}});
    }
  }
  w.end_section();

  nlohmann::json precisions = nlohmann::json::object();
  const auto& nodes = s.model.graph.nodes;
  for (size_t k = 0; k < s.plan.by_node.size() && k < nodes.size(); ++k) {
    if (s.plan.by_node[k] && !nodes[k].outputs.empty())
      precisions[nodes[k].outputs[0]] = precision_name(s.plan.precision_by_node[k]);
  }
  nlohmann::json opsets = nlohmann::json::object();
  collect_node_opsets(s.model.graph, opsets);
  nlohmann::json bucket_plans_json = nlohmann::json::array();
  for (const BucketPlan& b : bucket_plans()) bucket_plans_json.push_back(bucket_plan_json(b));
  const nlohmann::json kernels = {
      {"precision_by_node", precisions},   {"node_opsets", opsets},
      {"model_opsets", s.model.opsets},    {"packed", packed_index},
      {"bucket_plans", bucket_plans_json}, {"histogram", s.plan.histogram}};
  const std::string kernels_text = kernels.dump();
  w.begin_section(engine::SectionKind::Kernels);
  w.append(kernels_text.data(), kernels_text.size());
  w.end_section();

  progress("hash source model");
  nlohmann::json source = {{"file", std::filesystem::path(s.source_path).filename().string()}};
  if (!s.source_path.empty() && !s.from_engine) {
    source["xxh3_128"] = engine::hash_file(s.source_path);
    source["bytes"] = std::filesystem::file_size(s.source_path);
  }
  nlohmann::json meta;
  if (s.from_engine) {
    // Re-saved from an engine: its provenance stays; only the target and time are new.
    meta = nlohmann::json::parse(s.engine_metadata);
  } else {
    meta["source"] = source;
    meta["options"] = {
        {"optimization", passes::level_name(s.options.optimization)},
        {"precision", precision_name(s.options.precision)},
        {"accuracy_budget", s.options.accuracy_budget},
        {"buckets", s.options.buckets.empty() ? eo.buckets : to_string(s.options.buckets)}};
    meta["passes"] = s.optimization_text;
    meta["precision_report"] = s.precision_report;
    if (s.auto_result) meta["auto_precision"] = auto_json(*s.auto_result);
  }
  meta["format_version"] = engine::kFormatVersion;
  meta["kpt_version"] = KPT_VERSION_STRING;
  meta["created"] = utc_now();
  meta["target"] = target.to_json();
  meta["kernels"] = s.plan.histogram;
  meta["packed_weights"] = packed_index.size();
  meta["bucket_plans"] = bucket_plans_json.size();
  const std::string meta_text = meta.dump(2);
  w.begin_section(engine::SectionKind::Metadata);
  w.append(meta_text.data(), meta_text.size());
  w.end_section();
  progress("finish (header, checksums)");
  w.finish();
}

std::unique_ptr<Session::Impl> Session::load_engine(const std::string& path,
                                                    const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->from_engine = true;
  impl->source_path = path;
  impl->progress("map and verify " + path);
  const engine::EngineFile file = engine::open_engine(path, {options.verify_engine});

  const std::string_view meta_text = file.section(engine::SectionKind::Metadata);
  const nlohmann::json meta = parse_json(meta_text, path, "metadata");
  check(meta.contains("target") && meta.contains("options"),
        path + ": engine metadata lacks its target or options");
  const auto target = engine::EngineTarget::from_json(meta["target"]);
  const bool repack =
      engine::check_target(target, options.repack_engine, path) == engine::TargetFit::Repack;

  const std::string_view weights = file.section(engine::SectionKind::Weights);
  const onnx_import::ExternalResolver resolver = [&](const std::string& location) {
    check(location == kWeightsLocation, path + ": engine graph names external data '" + location +
                                            "'; an engine keeps its weights in its own file");
    return onnx_import::MappedBytes{weights.data(), weights.size(), file.mapping};
  };
  impl->progress("read graph");
  impl->model = onnx_import::import_bytes(std::string(file.section(engine::SectionKind::Graph)), "",
                                          {}, &resolver);

  const nlohmann::json kernels =
      parse_json(file.section(engine::SectionKind::Kernels), path, "kernel plan");
  check(kernels.contains("precision_by_node") && kernels.contains("packed") &&
            kernels.contains("node_opsets"),
        path + ": engine kernel plan lacks precision_by_node, packed or node_opsets");
  restore_node_opsets(impl->model.graph, kernels["node_opsets"]);
  // The graph section's opset_import is the highest a node needs (ONNX has one per domain);
  // the model's own imports are what export lowers to.
  if (kernels.contains("model_opsets")) {
    impl->model.opsets = kernels["model_opsets"].get<std::map<std::string, int>>();
    restore_graph_opsets(impl->model.graph, impl->model.opsets);
  }
  const nlohmann::json& precisions = kernels["precision_by_node"];
  for (auto it = precisions.begin(); it != precisions.end(); ++it)
    impl->engine_precisions[it.key()] = parse_precision(it.value().get<std::string>());
  if (!repack) {
    const std::string_view packed = file.section(engine::SectionKind::Packed);
    const nlohmann::json& index = kernels["packed"];
    for (const auto& e : index) {
      const auto offset = e.at("offset").get<uint64_t>();
      const auto size = e.at("size").get<uint64_t>();
      check(offset <= packed.size() && size <= packed.size() - offset,
            path + ": engine packed-weight index points beyond its section");
      impl->packed->add_prepacked(
          e.at("key").get<std::string>(),
          cpu::PackedBytes{packed.data() + offset, static_cast<size_t>(size), file.mapping});
    }
  }

  // The engine's buckets apply unless the caller declares others; their plans were made when
  // the engine was, so nothing is warmed at load.
  const std::string buckets = meta["options"].value("buckets", "");
  if (impl->options.buckets.empty() && !buckets.empty()) {
    impl->options.buckets = parse_shape_buckets(buckets);
    if (kernels.contains("bucket_plans")) {
      for (const auto& b : kernels["bucket_plans"])
        impl->engine_bucket_plans.push_back(bucket_plan_from_json(b, path));
    }
  }
  impl->options.warm_buckets = false;
  impl->options.precision = parse_precision(meta["options"].value("precision", "fp32"));
  impl->options.optimization =
      passes::level_from_name(meta["options"].value("optimization", "all"));
  impl->optimization_text = meta.value("passes", "");
  impl->precision_report = meta.value("precision_report", "");
  impl->engine_metadata = meta_text;
  return impl;
}

}  // namespace kpt
