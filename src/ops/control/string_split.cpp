// StringSplit: splits every string like Python's str.split (by a delimiter, or by runs of
// whitespace when the delimiter is absent or empty), at most maxsplit times. Output Y pads
// each row to the longest split with ""; Z holds the number of pieces.
#include <algorithm>
#include <cctype>
#include <limits>

#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = s.size();
  while (true) {
    while (i < n && is_space(s[i])) ++i;
    if (i >= n) break;
    if (static_cast<int64_t>(out.size()) == maxsplit) {
      size_t end = n;
      while (end > i && is_space(s[end - 1])) --end;
      out.push_back(s.substr(i, end - i));
      break;
    }
    size_t j = i;
    while (j < n && !is_space(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> split_delimiter(const std::string& s, const std::string& delim,
                                         int64_t maxsplit) {
  std::vector<std::string> out;
  size_t start = 0;
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t at = s.find(delim, start);
    if (at == std::string::npos) break;
    out.push_back(s.substr(start, at - start));
    start = at + delim.size();
  }
  out.push_back(s.substr(start));
  return out;
}

void string_split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.dtype() == DType::String,
            [&] { return "input must be a string tensor, got " + x.describe(); });
  const std::string delim = ctx.attr_string("delimiter", "");
  int64_t maxsplit = std::numeric_limits<int64_t>::max();
  if (ctx.node().has_attr("maxsplit")) {
    maxsplit = ctx.attr_int("maxsplit", 0);
    ctx.check(maxsplit >= 0, "maxsplit must be non-negative, got " + std::to_string(maxsplit));
  }
  std::vector<std::vector<std::string>> parts;
  size_t widest = 0;
  for (const auto& s : x.strings()) {
    parts.push_back(delim.empty() ? split_whitespace(s, maxsplit)
                                  : split_delimiter(s, delim, maxsplit));
    widest = std::max(widest, parts.back().size());
  }
  Dims yd = x.dims();
  yd.push_back(static_cast<int64_t>(widest));
  Tensor y(DType::String, yd);
  Tensor z(DType::I64, x.dims());
  auto& ys = y.strings();
  for (size_t i = 0; i < parts.size(); ++i) {
    z.data<int64_t>()[i] = static_cast<int64_t>(parts[i].size());
    for (size_t k = 0; k < parts[i].size(); ++k) ys[i * widest + k] = std::move(parts[i][k]);
  }
  ctx.set_output(0, std::move(y));
  ctx.set_output(1, std::move(z));
}

}  // namespace

KPT_REGISTER_OP("", "StringSplit", 1, string_split);

}  // namespace kpt::ops
