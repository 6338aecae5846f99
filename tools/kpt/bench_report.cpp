// kpt bench-report: combines kpt bench --json results into one chart and one markdown table.
#include "tools/kpt/bench_report.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <set>

#include "kpt/error.hpp"

namespace kpt::cli {

namespace {

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "input_ids=8x128, attention_mask=8x128"
std::string inputs_text(const nlohmann::json& r, bool only_first_of_equal) {
  std::string s;
  std::set<std::string> shapes;
  if (!r.contains("inputs")) return s;
  for (const auto& [name, info] : r.at("inputs").items()) {
    std::string dims;
    for (const auto& d : info.at("shape"))
      dims += (dims.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    if (dims.empty()) dims = "scalar";
    if (only_first_of_equal && !shapes.insert(dims).second) continue;
    s += (s.empty()             ? ""
          : only_first_of_equal ? " "
                                : ", ") +
         (only_first_of_equal ? dims : name + "=" + dims);
  }
  return s;
}

double p50_of(const nlohmann::json& r) {
  return r.at("latency_ms").at("p50").get<double>();
}

std::string agreement_text(const nlohmann::json& r) {
  if (!r.contains("agreement")) return "not compared";
  double worst_cos = 1, worst_abs = 0;
  for (const auto& [name, a] : r.at("agreement").items()) {
    worst_cos = std::min(worst_cos, a.at("cosine").get<double>());
    worst_abs = std::max(worst_abs, a.at("max_abs").get<double>());
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s: max abs %.1e, cos %.6f",
                r.value("agreement_ok", false) ? "ok" : "FAILED", worst_abs, worst_cos);
  return buf;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "cannot read " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": not JSON (" + e.what() + ")");
  }
  check(j.is_object() && j.contains("latency_ms") && j.at("latency_ms").contains("p50"),
        path + ": not a kpt bench --json result (expected latency_ms.p50)");
  return j;
}

struct Args {
  std::vector<std::string> files;
  std::string svg;
  std::string markdown;
  std::string title = "p50 latency, kpt vs ONNX Runtime (CPU)";
};

void run(const Args& a) {
  std::vector<nlohmann::json> results;
  for (const auto& f : a.files) results.push_back(read_json(f));
  if (!a.svg.empty()) {
    BarChart chart = latency_chart(results);
    chart.title = a.title;
    if (!std::filesystem::path(a.svg).parent_path().empty()) {
      std::filesystem::create_directories(std::filesystem::path(a.svg).parent_path());
    }
    std::ofstream(a.svg) << render_svg(chart);
    std::cout << "wrote " << a.svg << "\n";
  }
  const std::string table = markdown_table(results);
  if (!a.markdown.empty()) {
    std::ofstream(a.markdown) << table;
    std::cout << "wrote " << a.markdown << "\n";
  }
  std::cout << table;
}

}  // namespace

std::string result_label(const nlohmann::json& r) {
  if (r.contains("label") && !r.at("label").get<std::string>().empty()) {
    return r.at("label").get<std::string>();
  }
  std::filesystem::path model = r.value("model", std::string("model"));
  std::string name = model.filename() == "model.onnx" && model.has_parent_path()
                         ? model.parent_path().filename().string()
                         : model.stem().string();
  std::string label = name;
  const std::string dims = inputs_text(r, true);
  if (!dims.empty()) label += " " + dims;
  const std::string precision = r.value("precision", std::string("fp32"));
  if (precision != "fp32") label += " " + precision;
  return label;
}

BarChart latency_chart(const std::vector<nlohmann::json>& results) {
  BarChart chart;
  chart.series = {"kpt", "ONNX Runtime"};
  chart.scale_per_group = results.size() > 1;
  std::set<std::string> threads;
  for (const auto& r : results) {
    BarGroup g;
    g.label = result_label(r);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    g.values = {p50_of(r),
                r.contains("ort") ? r.at("ort").at("latency_ms").at("p50").get<double>() : nan};
    if (r.contains("speedup_p50")) {
      const double s = r.at("speedup_p50").get<double>();
      g.note = s >= 1 ? fixed(s, 2) + "x faster" : fixed(1 / s, 2) + "x slower";
    }
    if (r.contains("threads")) threads.insert(std::to_string(r.at("threads").get<int>()));
    chart.groups.push_back(g);
  }
  std::string t;
  for (const auto& x : threads) t += (t.empty() ? "" : "/") + x;
  chart.subtitle = "p50 of timed runs, lower is better" +
                   (t.empty() ? std::string() : ", " + t + " threads") +
                   (chart.scale_per_group ? "; bars scaled per model" : "");
  chart.title = results.size() == 1 ? "p50 latency: " + result_label(results[0])
                                    : "p50 latency, kpt vs ONNX Runtime (CPU)";
  return chart;
}

std::string markdown_table(const std::vector<nlohmann::json>& results) {
  std::string s =
      "| model | inputs | threads | precision | kpt p50 (ms) | ORT p50 (ms) | speedup | agreement "
      "|\n| --- | --- | ---: | --- | ---: | ---: | ---: | --- |\n";
  for (const auto& r : results) {
    std::filesystem::path model = r.value("model", std::string("?"));
    const std::string name = model.filename() == "model.onnx" && model.has_parent_path()
                                 ? model.parent_path().filename().string()
                                 : model.stem().string();
    s +=
        "| " + (r.contains("label") ? r.at("label").get<std::string>() : name) + " | " +
        inputs_text(r, false) + " | " +
        (r.contains("threads") ? std::to_string(r.at("threads").get<int>()) : "?") + " | " +
        r.value("precision", std::string("fp32")) + " | " + fixed(p50_of(r), 3) + " | " +
        (r.contains("ort") ? fixed(r.at("ort").at("latency_ms").at("p50").get<double>(), 3) : "—") +
        " | " +
        (r.contains("speedup_p50") ? fixed(r.at("speedup_p50").get<double>(), 2) + "x" : "—") +
        " | " + agreement_text(r) + " |\n";
  }
  return s;
}

void add_bench_report(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench-report", "Combine kpt bench --json results into a chart and a markdown table");
  cmd->add_option("results", a->files, "kpt bench --json files")->required();
  cmd->add_option("--svg", a->svg, "Write a grouped bar chart of p50 latency (kpt vs ORT)");
  cmd->add_option("--markdown", a->markdown, "Write the markdown table here too");
  cmd->add_option("--title", a->title, "Chart title");
  cmd->callback([a] { run(*a); });
}

}  // namespace kpt::cli
