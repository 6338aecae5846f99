// StringNormalizer: drops stopwords from a [C] or [1, C] string tensor, then changes case.
// Case folding is ASCII only (the locale attribute is not consulted).
#include <algorithm>
#include <cctype>
#include <set>

#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

std::string ascii_lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}
std::string ascii_upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

void string_normalizer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.dtype() == DType::String,
            [&] { return "input must be a string tensor, got " + x.describe(); });
  ctx.check(x.rank() == 1 || (x.rank() == 2 && x.dims()[0] == 1),
            [&] { return "input must be [C] or [1, C], got " + x.describe(); });
  const std::string action = ctx.attr_string("case_change_action", "NONE");
  ctx.check(action == "NONE" || action == "LOWER" || action == "UPPER",
            "case_change_action must be NONE, LOWER or UPPER, got '" + action + "'");
  const bool sensitive = ctx.attr_int("is_case_sensitive", 0) != 0;
  std::set<std::string> stop;
  for (const auto& w : ctx.node().attr_strings("stopwords"))
    stop.insert(sensitive ? w : ascii_lower(w));
  std::vector<std::string> kept;
  for (const auto& s : x.strings()) {
    if (stop.count(sensitive ? s : ascii_lower(s))) continue;
    kept.push_back(action == "LOWER" ? ascii_lower(s) : action == "UPPER" ? ascii_upper(s) : s);
  }
  // An all-stopword input leaves one empty string, as the operator defines.
  if (kept.empty()) kept.push_back("");
  const int64_t n = static_cast<int64_t>(kept.size());
  Tensor out(DType::String, x.rank() == 1 ? Dims{n} : Dims{1, n});
  out.strings() = std::move(kept);
  ctx.set_output(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("", "StringNormalizer", 1, string_normalizer);

}  // namespace kpt::ops
