#include "tools/kpt/summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kpt::cli {

std::string summarize(const Value& v) {
  if (v.is_none()) return "(empty optional)";
  if (v.is_sequence()) return "sequence of " + std::to_string(v.sequence.size()) + " tensors";
  const Tensor& t = v.tensor;
  std::string s = t.describe();
  if (t.numel() == 0) return s + " (empty)";
  if (t.dtype() == DType::String) return s + " first '" + t.strings()[0] + "'";
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  int64_t nan = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double x = t.get_f64(i);
    if (std::isnan(x)) {
      ++nan;
      continue;
    }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, " min %.6g max %.6g mean %.6g", lo, hi,
                sum / static_cast<double>(std::max<int64_t>(1, t.numel() - nan)));
  s += buf;
  if (nan) s += " (" + std::to_string(nan) + " NaN)";
  return s;
}

}  // namespace kpt::cli
