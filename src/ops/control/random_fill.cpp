// RandomUniform, RandomNormal and their *Like forms: tensors of fresh random floats.
#include "core/cast.hpp"
#include "ops/control/random_util.hpp"

namespace kpt::ops {
namespace {

enum class Dist { Uniform, Normal };

void fill(KernelContext& ctx, Dist dist, const Dims& dims, DType dtype) {
  ctx.check(is_float(dtype),
            "output type must be a float type, got " + std::string(dtype_name(dtype)));
  for (auto d : dims)
    ctx.check(d >= 0, [&] { return "shape " + dims_to_string(dims) + " has a negative dim"; });
  Tensor out(DType::F64, dims);
  auto eng = control::make_engine(ctx);
  double* p = out.data<double>();
  if (dist == Dist::Uniform) {
    const double lo = ctx.attr_float("low", 0.0f), hi = ctx.attr_float("high", 1.0f);
    ctx.check(lo <= hi, "low must not exceed high");
    std::uniform_real_distribution<double> u(lo, hi);
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = u(eng);
  } else {
    const double mean = ctx.attr_float("mean", 0.0f), scale = ctx.attr_float("scale", 1.0f);
    ctx.check(scale >= 0, "scale must be non-negative");
    std::normal_distribution<double> n(mean, scale);
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = n(eng);
  }
  ctx.set_output(0, cast_tensor(out, dtype));
}

void from_shape(KernelContext& ctx, Dist dist) {
  if (!ctx.node().has_attr("shape")) ctx.fail("attribute 'shape' is required");
  const Dims dims = ctx.attr_ints("shape");
  element_count(dims);
  fill(ctx, dist, dims, control::output_dtype(ctx, DType::F32));
}

void like(KernelContext& ctx, Dist dist) {
  const Tensor& x = ctx.input(0);
  fill(ctx, dist, x.dims(), control::output_dtype(ctx, x.dtype()));
}

void random_uniform(KernelContext& ctx) {
  from_shape(ctx, Dist::Uniform);
}
void random_normal(KernelContext& ctx) {
  from_shape(ctx, Dist::Normal);
}
void random_uniform_like(KernelContext& ctx) {
  like(ctx, Dist::Uniform);
}
void random_normal_like(KernelContext& ctx) {
  like(ctx, Dist::Normal);
}

}  // namespace

KPT_REGISTER_OP("", "RandomUniform", 1, random_uniform);
KPT_REGISTER_OP("", "RandomNormal", 1, random_normal);
KPT_REGISTER_OP("", "RandomUniformLike", 1, random_uniform_like);
KPT_REGISTER_OP("", "RandomNormalLike", 1, random_normal_like);

}  // namespace kpt::ops
