#pragma once
// A small SVG writer for horizontal grouped bar charts: benchmark latencies, ours vs ONNX
// Runtime. Self-contained text (no scripts, no external fonts) so it renders on GitHub.
#include <string>
#include <vector>

namespace kpt::cli {

struct BarGroup {
  std::string label;           // left of the bars ("bert_base b8 s128")
  std::vector<double> values;  // one per series; NaN (or missing) draws no bar
  std::string note;            // right of the group ("1.8x faster than ORT")
};

struct BarChart {
  std::string title;
  std::string subtitle;
  std::string unit = "ms";          // after each value label
  std::vector<std::string> series;  // legend names, one per bar of a group
  std::vector<BarGroup> groups;
  // Per group: the longest bar of each group spans the full width, so models whose latencies
  // differ by orders of magnitude still show their ratio. Otherwise one axis for all.
  bool scale_per_group = false;
};

// The chart as an SVG document. Every bar is a <rect class="bar s{series}"> with a <title>
// tooltip; labels are XML-escaped.
std::string render_svg(const BarChart& chart);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace kpt::cli
