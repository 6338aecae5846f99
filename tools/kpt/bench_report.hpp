#pragma once
// Turns kpt bench JSON results into a chart and a markdown table: used by kpt bench --chart for
// one result and by kpt bench-report for many.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/kpt/svg_chart.hpp"

namespace kpt::cli {

// "bert_base 8x128 bf16": the result's "label", else the model's name (its folder when the file
// is model.onnx), the input dims and the precision when it is not fp32.
std::string result_label(const nlohmann::json& result);

// Grouped bars of p50 latency, kpt and (where the result has one) ONNX Runtime, with the
// speedup as each group's note.
BarChart latency_chart(const std::vector<nlohmann::json>& results);

// | model | inputs | threads | precision | kpt p50 | ORT p50 | speedup | agreement |
std::string markdown_table(const std::vector<nlohmann::json>& results);

// kpt bench-report A.json B.json ... [--svg OUT.svg] [--markdown OUT.md]; registered by
// add_bench, as part of the same command family.
void add_bench_report(CLI::App& app);

}  // namespace kpt::cli
