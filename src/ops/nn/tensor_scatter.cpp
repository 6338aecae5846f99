// TensorScatter (opset 24): writes `update` into a copy of a KV-cache-like `past_cache` along
// `axis`, starting per batch entry at write_indices[b]; "circular" mode wraps around the axis.
#include <cstring>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

void tensor_scatter(KernelContext& ctx) {
  const Tensor& past = ctx.input(0);
  const Tensor& update = ctx.input(1);
  ctx.check(past.dtype() == update.dtype(), [&] {
    return "past_cache " + past.describe() + " and update " + update.describe() +
           " must have one type";
  });
  ctx.check(past.dtype() != DType::String, "string caches are not supported");
  ctx.check(past.rank() >= 2 && update.rank() == past.rank(), [&] {
    return "past_cache and update must have the same rank >= 2, got " + past.describe() + " and " +
           update.describe();
  });
  const int64_t rank = static_cast<int64_t>(past.rank());
  const int64_t axis = normalize_axis(ctx.attr_int("axis", -2), rank);
  ctx.check(axis != 0, "axis must not be the batch axis 0");
  const std::string mode = ctx.attr_string("mode", "linear");
  ctx.check(mode == "linear" || mode == "circular",
            "mode must be \"linear\" or \"circular\", got \"" + mode + "\"");
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      ctx.check(past.dims()[static_cast<size_t>(d)] == update.dims()[static_cast<size_t>(d)], [&] {
        return "update " + update.describe() + " must match past_cache " + past.describe() +
               " outside axis " + std::to_string(axis);
      });
  const int64_t batch = past.dim(0), max_len = past.dim(axis), len = update.dim(axis);
  ctx.check(len <= max_len, [&] {
    return "update " + update.describe() + " is longer than the cache " + past.describe() +
           " along axis " + std::to_string(axis);
  });
  std::vector<int64_t> start(static_cast<size_t>(batch), 0);
  if (ctx.has_input(2)) {
    const Tensor& w = ctx.input(2);
    ctx.check(w.rank() == 1 && w.dim(0) == batch, [&] {
      return "write_indices must be 1-D of the batch size " + std::to_string(batch) + ", got " +
             w.describe();
    });
    start = w.to_i64_vector();
  }
  const auto a = static_cast<size_t>(axis);
  const int64_t mid = product(past.dims(), 1, a);  // dims between batch and axis
  const int64_t inner = product(past.dims(), a + 1, past.rank());
  const size_t es = dtype_size(past.dtype());
  Tensor out = past.clone();
  auto* po = static_cast<char*>(out.raw());
  const auto* pu = static_cast<const char*>(update.raw());
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t s0 = start[static_cast<size_t>(b)];
    for (int64_t s = 0; s < len; ++s) {
      int64_t pos = s0 + s;
      if (mode == "circular") pos = ((pos % max_len) + max_len) % max_len;
      ctx.check(pos >= 0 && pos < max_len, "write index " + std::to_string(s0) + " + " +
                                               std::to_string(s) + " is outside the cache of " +
                                               std::to_string(max_len) + " entries");
      for (int64_t m = 0; m < mid; ++m) {
        const int64_t dst = ((b * mid + m) * max_len + pos) * inner;
        const int64_t src = ((b * mid + m) * len + s) * inner;
        std::memcpy(po + static_cast<size_t>(dst) * es, pu + static_cast<size_t>(src) * es,
                    static_cast<size_t>(inner) * es);
      }
    }
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "TensorScatter", 1, tensor_scatter);

}  // namespace kpt::ops::nn
