// Split: cuts a tensor into pieces along one axis.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

void split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 0), rank);
  const int64_t dim = x.dims()[static_cast<size_t>(axis)];
  std::vector<int64_t> sizes;
  if (ctx.opset() >= 13) {
    if (ctx.has_input(1)) sizes = ctx.input(1).to_i64_vector();
  } else if (ctx.opset() >= 2) {
    sizes = ctx.attr_ints("split");
  } else {
    sizes = ctx.has_input(1) ? ctx.input(1).to_i64_vector() : ctx.attr_ints("split");
  }
  const int64_t n_out = static_cast<int64_t>(ctx.num_outputs());
  if (sizes.empty()) {
    if (ctx.opset() >= 18 && ctx.node().has_attr("num_outputs")) {
      const int64_t n = ctx.attr_int("num_outputs", n_out);
      ctx.check(n >= 1 && n == n_out, "num_outputs " + std::to_string(n) +
                                          " does not match the node's " + std::to_string(n_out) +
                                          " outputs");
      // Chunks of ceil(dim / n); the last one takes what is left.
      const int64_t chunk = (dim + n - 1) / n;
      for (int64_t i = 0; i < n; ++i)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    } else {
      ctx.check(n_out >= 1 && dim % n_out == 0, [&] {
        return "axis " + std::to_string(axis) + " of " + x.describe() +
               " cannot be split evenly into " + std::to_string(n_out) + " outputs";
      });
      sizes.assign(static_cast<size_t>(n_out), dim / n_out);
    }
  }
  ctx.check(static_cast<int64_t>(sizes.size()) == n_out,
            "split has " + std::to_string(sizes.size()) + " entries but the node has " +
                std::to_string(n_out) + " outputs");
  int64_t total = 0;
  for (int64_t s : sizes) {
    ctx.check(s >= 0,
              [&] { return "split sizes must be non-negative, got " + dims_to_string(sizes); });
    total += s;
  }
  ctx.check(total == dim, [&] {
    return "split sizes " + dims_to_string(sizes) + " do not add up to " + std::to_string(dim) +
           ", the size of axis " + std::to_string(axis);
  });
  const int64_t outer = product(x.dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = product(x.dims(), static_cast<size_t>(axis) + 1, x.rank());
  int64_t start = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Dims dims = x.dims();
    dims[static_cast<size_t>(axis)] = sizes[k];
    Tensor out(x.dtype(), dims);
    const int64_t row = sizes[k] * inner;
    for (int64_t o = 0; o < outer; ++o)
      copy_elements(x, o * dim * inner + start * inner, out, o * row, row);
    start += sizes[k];
    ctx.set_output(k, out);
  }
}

}  // namespace

KPT_REGISTER_OP("", "Split", 1, split);

}  // namespace kpt::ops
