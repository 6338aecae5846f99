#include "tools/kpt/svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace kpt::cli {

namespace {

// Colour-blind-safe pair first (Okabe-Ito), then more for extra series.
const char* kColors[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"};

constexpr int kLabelWidth = 230;  // group labels
constexpr int kBarArea = 440;     // the longest bar
constexpr int kNoteWidth = 200;   // value labels and notes right of the bars
constexpr int kBarHeight = 16;
constexpr int kGroupGap = 14;
constexpr int kTop = 64;

std::string number(double v) {
  char buf[32];
  if (v >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

bool drawable(const BarGroup& g, size_t s) {
  return s < g.values.size() && std::isfinite(g.values[s]) && g.values[s] >= 0;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_svg(const BarChart& chart) {
  const size_t series = std::max<size_t>(1, chart.series.size());
  const int group_height = static_cast<int>(series) * kBarHeight + kGroupGap;
  const int legend_height = 28;
  const int height = kTop + static_cast<int>(chart.groups.size()) * group_height + legend_height;
  const int width = kLabelWidth + kBarArea + kNoteWidth;

  double global_max = 0;
  for (const auto& g : chart.groups) {
    for (size_t s = 0; s < series; ++s) {
      if (drawable(g, s)) global_max = std::max(global_max, g.values[s]);
    }
  }

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height
    << "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text class=\"title\" x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">"
    << xml_escape(chart.title) << "</text>\n";
  if (!chart.subtitle.empty()) {
    o << "<text class=\"subtitle\" x=\"10\" y=\"42\" fill=\"#555\">" << xml_escape(chart.subtitle)
      << "</text>\n";
  }
  int y = kTop;
  for (const auto& g : chart.groups) {
    double group_max = 0;
    for (size_t s = 0; s < series; ++s) {
      if (drawable(g, s)) group_max = std::max(group_max, g.values[s]);
    }
    const double scale_max = chart.scale_per_group ? group_max : global_max;
    const int mid = y + static_cast<int>(series) * kBarHeight / 2;
    o << "<g class=\"group\">\n";
    o << "<text class=\"label\" x=\"" << kLabelWidth - 8 << "\" y=\"" << mid + 4
      << "\" text-anchor=\"end\">" << xml_escape(g.label) << "</text>\n";
    int right = kLabelWidth;
    for (size_t s = 0; s < series; ++s) {
      const int bar_y = y + static_cast<int>(s) * kBarHeight;
      if (!drawable(g, s)) continue;
      const double v = g.values[s];
      const int w =
          scale_max > 0 ? std::max(1, static_cast<int>(std::lround(v / scale_max * kBarArea))) : 1;
      const std::string name = s < chart.series.size() ? chart.series[s] : "";
      o << "<rect class=\"bar s" << s << "\" x=\"" << kLabelWidth << "\" y=\"" << bar_y + 1
        << "\" width=\"" << w << "\" height=\"" << kBarHeight - 2 << "\" fill=\""
        << kColors[s % std::size(kColors)] << "\"><title>"
        << xml_escape(name + ": " + number(v) + " " + chart.unit) << "</title></rect>\n";
      o << "<text class=\"value\" x=\"" << kLabelWidth + w + 4 << "\" y=\"" << bar_y + 12
        << "\" font-size=\"11\">" << xml_escape(number(v) + " " + chart.unit) << "</text>\n";
      right = std::max(right, kLabelWidth + w + 70);
    }
    if (!g.note.empty()) {
      o << "<text class=\"note\" x=\"" << right << "\" y=\"" << mid + 4
        << "\" font-weight=\"bold\">" << xml_escape(g.note) << "</text>\n";
    }
    o << "</g>\n";
    y += group_height;
  }
  int x = kLabelWidth;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    o << "<rect class=\"legend\" x=\"" << x << "\" y=\"" << y + 4
      << "\" width=\"12\" height=\"12\" fill=\"" << kColors[s % std::size(kColors)] << "\"/>\n";
    o << "<text x=\"" << x + 16 << "\" y=\"" << y + 14 << "\">" << xml_escape(chart.series[s])
      << "</text>\n";
    x += 24 + 8 * static_cast<int>(chart.series[s].size());
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace kpt::cli
