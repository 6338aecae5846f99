// Unique: distinct elements (or distinct slices along an axis), with first-occurrence indices,
// inverse indices and counts.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

// The input viewed as `dim` items along the axis, each of outer*inner elements.
struct Layout {
  int64_t outer, dim, inner;
  int64_t offset(int64_t item, int64_t e) const {
    return ((e / inner) * dim + item) * inner + e % inner;
  }
};

struct Groups {
  std::vector<int64_t> first;    // per unique item (output order): its first index in the input
  std::vector<int64_t> count;    // per unique item
  std::vector<int64_t> inverse;  // per input item: its unique item
};

// NaNs sort after every number and equal each other, as numpy.unique treats them.
template <typename T>
bool less(const T& x, const T& y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x)) return false;
    if (std::isnan(y)) return true;
  }
  return x < y;
}

template <typename T>
Groups group_items(const T* p, const Layout& l, bool sorted) {
  const int64_t width = l.outer * l.inner;
  auto compare = [&](int64_t a, int64_t b) {
    for (int64_t e = 0; e < width; ++e) {
      const T& x = p[l.offset(a, e)];
      const T& y = p[l.offset(b, e)];
      if (less(x, y)) return -1;
      if (less(y, x)) return 1;
    }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(l.dim));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
  // Runs of equal items in sorted order; stability makes each run start at its first occurrence.
  std::vector<std::vector<int64_t>> runs;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || compare(order[i - 1], order[i]) != 0) runs.emplace_back();
    runs.back().push_back(order[i]);
  }
  if (!sorted)
    std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  Groups g;
  g.inverse.resize(static_cast<size_t>(l.dim));
  for (size_t u = 0; u < runs.size(); ++u) {
    g.first.push_back(runs[u][0]);
    g.count.push_back(static_cast<int64_t>(runs[u].size()));
    for (int64_t item : runs[u]) g.inverse[static_cast<size_t>(item)] = static_cast<int64_t>(u);
  }
  return g;
}

Tensor i64_vector(const std::vector<int64_t>& v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

void unique(KernelContext& ctx) {
  Tensor x = ctx.input(0);
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  size_t axis = 0;
  if (ctx.node().has_attr("axis"))
    axis = static_cast<size_t>(
        normalize_axis(ctx.attr_int("axis", 0), static_cast<int64_t>(x.rank())));
  else
    x = x.reshaped({x.numel()});
  const Layout l{product(x.dims(), 0, axis), x.dims()[axis], product(x.dims(), axis + 1, x.rank())};
  Groups g;
  if (x.dtype() == DType::String) {
    g = group_items(x.strings().data(), l, sorted);
  } else {
    const Tensor c = to_compute(x);
    g = dispatch(c.dtype(), "Unique",
                 [&]<typename T>() { return group_items(c.data<T>(), l, sorted); });
  }
  const int64_t nu = static_cast<int64_t>(g.first.size());
  Dims dims = x.dims();
  dims[axis] = nu;
  std::vector<int64_t> offsets = offset_buffer(element_count(dims));
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t u = 0; u < nu; ++u)
      for (int64_t j = 0; j < l.inner; ++j)
        offsets[static_cast<size_t>((o * nu + u) * l.inner + j)] =
            (o * l.dim + g.first[static_cast<size_t>(u)]) * l.inner + j;
  ctx.set_output(0, take_elements(x, dims, offsets));
  ctx.set_output(1, i64_vector(g.first));
  ctx.set_output(2, i64_vector(g.inverse));
  ctx.set_output(3, i64_vector(g.count));
}

}  // namespace

KPT_REGISTER_OP("", "Unique", 11, unique);

}  // namespace kpt::ops
