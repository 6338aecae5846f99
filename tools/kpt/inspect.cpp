// kpt inspect MODEL: what a model is (producer, opsets, inputs and outputs with inferred
// shapes, op histogram, parameters) and how much work it does (FLOPs for given input shapes).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "analysis/bind_shapes.hpp"
#include "analysis/flops.hpp"
#include "analysis/load_for_analysis.hpp"
#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "runtime/random_inputs.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string model;
  std::vector<std::string> shapes;
  bool graph = false;
  std::string json;
};

struct Report {
  analysis::AnalysisModel loaded;
  std::map<std::string, int64_t> symbols_given;
  std::vector<std::string> bound_to_one;  // dims FLOPs were counted with size 1
  analysis::InferenceSummary inference;
  analysis::FlopCount flops;
  analysis::ParameterCount present;
  analysis::ParameterCount stripped;
  std::vector<std::pair<std::string, int>> histogram;
};

std::string with_unit(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int p = 0;
  while (v >= 1000 && p < 5) {
    v /= 1000;
    ++p;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, p == 0 ? "%.0f %s%s" : "%.2f %s%s", v, prefixes[p], unit);
  return buf;
}

void count_ops(const ir::Graph& g, std::map<std::string, int>& counts) {
  for (const auto& n : g.nodes) {
    ++counts[(n.domain.empty() ? "" : n.domain + ".") + n.op_type];
    for (const auto& [name, a] : n.attrs) {
      if (a.g) count_ops(*a.g, counts);
      for (const auto& sg : a.graphs) count_ops(*sg, counts);
    }
  }
}

std::map<std::string, Dims> parse_shapes(const std::vector<std::string>& specs) {
  std::map<std::string, Dims> shapes;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    check(eq != std::string::npos && eq > 0,
          "--shape '" + s + "': expected NAME=DIMS like x=1x3x224x224");
    shapes[s.substr(0, eq)] = runtime::parse_dims(s.substr(eq + 1));
  }
  return shapes;
}

Report analyze(const Args& a) {
  Report r;
  r.loaded = analysis::load_for_analysis(a.model);
  ir::Graph& g = r.loaded.model.graph;
  r.symbols_given = analysis::bind_input_shapes(g, parse_shapes(a.shapes));

  // FLOPs need static shapes: dims the user left open count as 1 in a copy of the graph. It
  // runs first because subgraphs are shared with the copy and the symbolic pass must win.
  ir::Graph sized = g;
  r.bound_to_one = analysis::bind_unknown_dims(sized, 1);
  if (!r.bound_to_one.empty()) analysis::infer_shapes(sized);
  r.inference = analysis::infer_shapes(g, analysis::InferenceOptions{});
  r.flops = analysis::count_flops(r.bound_to_one.empty() ? g : sized);

  r.present = analysis::count_parameters(g);
  for (const auto& w : r.loaded.stripped) {
    ++r.stripped.tensors;
    int64_t n = 1;
    for (int64_t d : w.dims) n *= d;
    r.stripped.elements += n;
    r.stripped.bytes += n * static_cast<int64_t>(dtype_size(w.dtype));
  }
  std::map<std::string, int> counts;
  count_ops(g, counts);
  r.histogram.assign(counts.begin(), counts.end());
  std::stable_sort(r.histogram.begin(), r.histogram.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  return r;
}

const ir::Type& type_of(const ir::Graph& g, const ir::ValueInfo& v) {
  const ir::Type* t = g.type_of(v.name);
  return t ? *t : v.type;
}

nlohmann::json shape_json(const ir::Type& t) {
  if (t.kind != ir::Type::Kind::Tensor || !t.shape) return nullptr;
  nlohmann::json dims = nlohmann::json::array();
  for (const auto& d : *t.shape) {
    if (d.known()) {
      dims.push_back(d.value);
    } else {
      dims.push_back(d.symbol.empty() ? "?" : d.symbol);
    }
  }
  return dims;
}

nlohmann::json io_json(const ir::Graph& g, const std::vector<ir::ValueInfo>& values) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& v : values) {
    const ir::Type& t = type_of(g, v);
    arr.push_back(
        {{"name", v.name},
         {"type", t.to_string()},
         {"dtype", t.kind == ir::Type::Kind::Tensor ? std::string(dtype_name(t.elem)) : ""},
         {"shape", shape_json(t)}});
  }
  return arr;
}

nlohmann::json params_json(const analysis::ParameterCount& p) {
  return {{"tensors", p.tensors}, {"elements", p.elements}, {"bytes", p.bytes}};
}

nlohmann::json to_json(const Args& a, const Report& r) {
  const ir::Model& m = r.loaded.model;
  nlohmann::json j;
  j["model"] = a.model;
  if (!r.loaded.engine_metadata.empty())
    j["engine"] = nlohmann::json::parse(r.loaded.engine_metadata);
  j["producer"] = m.producer_name;
  j["producer_version"] = m.producer_version;
  j["ir_version"] = m.ir_version;
  j["opsets"] = nlohmann::json::object();
  for (const auto& [domain, v] : m.opsets) j["opsets"][domain.empty() ? "ai.onnx" : domain] = v;
  j["inputs"] = io_json(m.graph, m.graph.inputs);
  j["outputs"] = io_json(m.graph, m.graph.outputs);
  j["nodes"] = r.inference.nodes;
  j["op_histogram"] = nlohmann::json::array();
  for (const auto& [op, n] : r.histogram) j["op_histogram"].push_back({{"op", op}, {"count", n}});
  j["parameters"] = {{"present", params_json(r.present)},
                     {"stripped", params_json(r.stripped)},
                     {"total_elements", r.present.elements + r.stripped.elements}};
  j["flops"] = {{"total", r.flops.total},          {"symbols_given", r.symbols_given},
                {"dims_set_to_1", r.bound_to_one}, {"nodes_counted", r.flops.nodes_counted},
                {"by_op", r.flops.by_op},          {"not_counted", r.flops.unknown_by_op}};
  j["shape_inference"] = {{"outputs_typed", r.inference.outputs_typed},
                          {"outputs_fully_static", r.inference.outputs_fully_static},
                          {"nodes_folded", r.inference.nodes_folded},
                          {"ops_without_inference", r.inference.ops_without_inference},
                          {"ops_failed", r.inference.first_failure}};
  return j;
}

void print_io(const char* label, const ir::Graph& g, const std::vector<ir::ValueInfo>& values) {
  for (const auto& v : values) {
    std::cout << label << v.name << ": " << type_of(g, v).to_string() << "\n";
  }
}

void print_params(const char* label, const analysis::ParameterCount& p) {
  std::cout << label << p.tensors << " tensors, " << with_unit(static_cast<double>(p.elements), "")
            << " elements, " << with_unit(static_cast<double>(p.bytes), "B") << "\n";
}

// What an engine file records about how it was made.
void print_engine(const std::string& metadata) {
  const nlohmann::json m = nlohmann::json::parse(metadata);
  const nlohmann::json& src = m["source"];
  const nlohmann::json& opt = m["options"];
  const nlohmann::json& target = m["target"];
  std::cout << "engine      format " << m.value("format_version", 0) << ", kpt "
            << m.value("kpt_version", "?") << ", created " << m.value("created", "?") << "\n";
  std::cout << "  source    " << src.value("file", "?") << " (xxh3-128 "
            << src.value("xxh3_128", "?") << ", " << src.value("bytes", 0) << " bytes)\n";
  std::cout << "  target    " << target.value("device", "?");
  if (target.value("device", "") == "cpu") {
    std::cout << ": " << target.value("cpu_brand", "") << "; features";
    for (const auto& f : target["cpu_features"]) std::cout << " " << f.get<std::string>();
  } else {
    std::cout << ":" << target.value("device_index", 0) << " " << target.value("gpu_name", "")
              << " (compute " << target.value("compute_capability", "") << ")";
  }
  std::cout << "; oneDNN " << target.value("onednn_version", "?") << "\n";
  std::cout << "  options   optimization " << opt.value("optimization", "?") << ", precision "
            << opt.value("precision", "?") << ", buckets '" << opt.value("buckets", "") << "'\n";
  std::cout << "  kernels  ";
  for (const auto& [k, n] : m["kernels"].items()) std::cout << " " << k << " " << n << ";";
  std::cout << "\n  packed    " << m.value("packed_weights", 0) << " prepacked weight buffers\n";
  if (m.contains("auto_precision")) {
    for (const auto& [name, c] : m["auto_precision"]["output_cosine"].items())
      std::cout << "  accuracy  output " << name << ": cosine to fp32 " << c << "\n";
  }
}

void print_text(const Args& a, const Report& r) {
  const ir::Model& m = r.loaded.model;
  const ir::Graph& g = m.graph;
  std::cout << "model       " << a.model << "\n";
  if (!r.loaded.engine_metadata.empty()) print_engine(r.loaded.engine_metadata);
  std::cout << "producer    " << (m.producer_name.empty() ? "(none)" : m.producer_name) << " "
            << m.producer_version << "\n";
  std::cout << "ir version  " << m.ir_version << "\nopsets     ";
  for (const auto& [domain, v] : m.opsets) {
    std::cout << " " << (domain.empty() ? "ai.onnx" : domain) << " " << v << ";";
  }
  std::cout << "\n";
  print_io("input       ", g, g.inputs);
  print_io("output      ", g, g.outputs);
  std::cout << "nodes       " << r.inference.nodes << " (subgraphs included)\nops        ";
  for (size_t k = 0; k < r.histogram.size(); ++k) {
    std::cout << (k && k % 6 == 0 ? "\n           " : "") << " " << r.histogram[k].first << " "
              << r.histogram[k].second << (k + 1 < r.histogram.size() ? "," : "");
  }
  std::cout << "\n";
  print_params("parameters  present: ", r.present);
  if (r.stripped.tensors) {
    print_params("            stripped (listed in metadata, no data): ", r.stripped);
    std::cout << "            total: "
              << with_unit(static_cast<double>(r.present.elements + r.stripped.elements), "")
              << " elements\n";
  }
  std::cout << "flops       " << with_unit(r.flops.total, "FLOP");
  if (!r.symbols_given.empty()) {
    std::cout << " with";
    for (const auto& [s, v] : r.symbols_given) std::cout << " " << s << "=" << v;
  }
  if (!r.bound_to_one.empty()) {
    std::cout << "; dims without --shape counted as 1:";
    for (const auto& s : r.bound_to_one) std::cout << " " << s;
  }
  std::cout << "\n";
  if (!r.flops.unknown_by_op.empty()) {
    std::cout << "            not counted (shapes unknown or op not modelled):";
    for (const auto& [op, n] : r.flops.unknown_by_op) std::cout << " " << op << " " << n << ";";
    std::cout << "\n";
  }
  std::vector<std::pair<std::string, double>> heavy(r.flops.by_op.begin(), r.flops.by_op.end());
  std::sort(heavy.begin(), heavy.end(),
            [](const auto& x, const auto& y) { return x.second > y.second; });
  if (heavy.size() > 5) heavy.resize(5);
  if (!heavy.empty() && r.flops.total > 0) {
    std::cout << "            by op:";
    for (const auto& [op, f] : heavy) {
      char pct[16];
      std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * f / r.flops.total);
      std::cout << " " << op << " " << pct << ";";
    }
    std::cout << "\n";
  }
  std::cout << "shapes      " << r.inference.outputs_typed << " node outputs typed, "
            << r.inference.outputs_fully_static << " fully static, " << r.inference.nodes_folded
            << " nodes folded to constants\n";
  if (!r.inference.ops_without_inference.empty()) {
    std::cout << "            no shape inference for:";
    for (const auto& [op, n] : r.inference.ops_without_inference)
      std::cout << " " << op << " " << n << ";";
    std::cout << "\n";
  }
  for (const auto& [op, msg] : r.inference.first_failure) {
    std::cout << "            inference failed (" << r.inference.ops_failed.at(op) << "x): " << msg
              << "\n";
  }
}

// Every node output with its inferred type, graph by graph.
void print_types(const ir::Graph& g, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& n : g.nodes) {
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      const ir::Type* t = g.type_of(o);
      std::cout << pad << o << ": " << (t ? t->to_string() : "?") << "   (" << n.op_type << ")\n";
    }
    for (const auto& [name, a] : n.attrs) {
      if (a.g) print_types(*a.g, indent + 4);
      for (const auto& sg : a.graphs) print_types(*sg, indent + 4);
    }
  }
}

void run(const Args& a) {
  Report r = analyze(a);
  print_text(a, r);
  if (a.graph) {
    std::cout << "\n" << ir::print(r.loaded.model.graph) << "\ninferred types:\n";
    print_types(r.loaded.model.graph, 2);
  }
  if (!a.json.empty()) {
    std::ofstream out(a.json);
    check(out.good(), "cannot write '" + a.json + "'");
    out << to_json(a, r).dump(1) << "\n";
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("inspect", "Describe a model: inputs, outputs, ops, parameters, FLOPs");
  cmd->add_option("model", a->model, "Model file (.onnx); weight-stripped skeletons work too")
      ->required();
  cmd->add_option("--shape", a->shapes,
                  "NAME=DIMS for an input, e.g. input_ids=1x128 (repeatable)");
  cmd->add_flag("--graph", a->graph, "Print the graph and every inferred type");
  cmd->add_option("--json", a->json, "Write the report as JSON to FILE");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
