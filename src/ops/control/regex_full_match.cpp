// RegexFullMatch: whether each string matches the whole pattern. The pattern is compiled as an
// ECMAScript std::regex; RE2-only syntax (named groups (?P<..>), \C, ...) is reported as
// unsupported.
#include <regex>

#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void regex_full_match(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.dtype() == DType::String,
            [&] { return "input must be a string tensor, got " + x.describe(); });
  if (!ctx.node().has_attr("pattern")) ctx.fail("attribute 'pattern' is required");
  const std::string pattern = ctx.attr_string("pattern", "");
  std::regex re;
  try {
    re = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    ctx.unsupported("pattern '" + pattern +
                    "' cannot be compiled as an ECMAScript regex: " + e.what());
  }
  Tensor out(DType::Bool, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    out.data<bool>()[i] = std::regex_match(x.strings()[static_cast<size_t>(i)], re);
  }
  ctx.set_output(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("", "RegexFullMatch", 1, regex_full_match);

}  // namespace kpt::ops
