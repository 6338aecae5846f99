// RotaryEmbedding (opset 23): rotates pairs of features of each head by position-dependent
// angles given as cos/sin caches. Input is [batch, heads, seq, head_size] or
// [batch, seq, heads * head_size] (with num_heads).
#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

void rotary_embedding(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& cos_t = ctx.input(1);
  const Tensor& sin_t = ctx.input(2);
  ctx.check(is_float(x.dtype()),
            [&] { return "input must be a float tensor, got " + x.describe(); });
  ctx.check(x.rank() == 3 || x.rank() == 4,
            [&] { return "input must be 3-D or 4-D, got " + x.describe(); });
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  const int64_t num_heads_attr = ctx.attr_int("num_heads", 0);
  int64_t batch = x.dim(0), heads = 0, seq = 0, head_size = 0;
  if (x.rank() == 4) {
    heads = x.dim(1);
    seq = x.dim(2);
    head_size = x.dim(3);
  } else {
    ctx.check(num_heads_attr > 0, "num_heads must be given (> 0) for a 3-D input");
    seq = x.dim(1);
    heads = num_heads_attr;
    ctx.check(x.dim(2) % heads == 0, "hidden size " + std::to_string(x.dim(2)) +
                                         " is not a multiple of num_heads " +
                                         std::to_string(heads));
    head_size = x.dim(2) / heads;
  }
  int64_t rot = ctx.attr_int("rotary_embedding_dim", 0);
  if (rot == 0) rot = head_size;
  ctx.check(rot > 0 && rot <= head_size && rot % 2 == 0,
            "rotary_embedding_dim must be even and at most the head size " +
                std::to_string(head_size) + ", got " + std::to_string(rot));
  const int64_t half = rot / 2;
  ctx.check(cos_t.dims() == sin_t.dims(), [&] {
    return "cos_cache " + cos_t.describe() + " and sin_cache " + sin_t.describe() +
           " must have the same shape";
  });
  const bool has_pos = ctx.has_input(3);
  std::vector<int64_t> pos;
  if (has_pos) {
    const Tensor& p = ctx.input(3);
    ctx.check(p.dims() == Dims{batch, seq}, [&] {
      return "position_ids must have shape [" + std::to_string(batch) + "," + std::to_string(seq) +
             "], got " + p.describe();
    });
    ctx.check(cos_t.rank() == 2,
              [&] { return "cos_cache must be 2-D with position_ids, got " + cos_t.describe(); });
    pos = p.to_i64_vector();
    for (int64_t v : pos)
      ctx.check(v >= 0 && v < cos_t.dim(0), "position id " + std::to_string(v) +
                                                " is outside the cache of " +
                                                std::to_string(cos_t.dim(0)) + " positions");
  } else {
    ctx.check(cos_t.rank() == 3 && cos_t.dim(0) == batch && cos_t.dim(1) == seq, [&] {
      return "without position_ids cos_cache must be [batch, seq, rotary_dim/2], got " +
             cos_t.describe();
    });
  }
  const int64_t cache_w = cos_t.dim(-1);
  ctx.check(cache_w >= half,
            "cos_cache last dim " + std::to_string(cache_w) +
                " is smaller than rotary_embedding_dim/2 = " + std::to_string(half));
  const std::vector<double> xv = to_f64(x), cv = to_f64(cos_t), sv = to_f64(sin_t);
  std::vector<double> y = xv;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      const int64_t row = has_pos ? pos[static_cast<size_t>(b * seq + s)] : b * seq + s;
      const double* c = cv.data() + row * cache_w;
      const double* sn = sv.data() + row * cache_w;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = x.rank() == 4 ? ((b * heads + h) * seq + s) * head_size
                                           : ((b * seq + s) * heads + h) * head_size;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i1 = interleaved ? base + 2 * i : base + i;
          const int64_t i2 = interleaved ? base + 2 * i + 1 : base + i + half;
          const double x1 = xv[static_cast<size_t>(i1)], x2 = xv[static_cast<size_t>(i2)];
          y[static_cast<size_t>(i1)] = c[i] * x1 - sn[i] * x2;
          y[static_cast<size_t>(i2)] = sn[i] * x1 + c[i] * x2;
        }
      }
    }
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "RotaryEmbedding", 1, rotary_embedding);

}  // namespace kpt::ops::nn
