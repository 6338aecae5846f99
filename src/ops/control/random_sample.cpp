// Bernoulli (a 0/1 draw per probability) and Multinomial (class indices drawn from
// unnormalized log-probabilities per batch row).
#include <cmath>

#include "core/cast.hpp"
#include "ops/control/random_util.hpp"

namespace kpt::ops {
namespace {

void bernoulli(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()),
            [&] { return "input must hold float probabilities, got " + x.describe(); });
  const DType dtype = control::output_dtype(ctx, x.dtype());
  auto eng = control::make_engine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Tensor out(DType::F64, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double p = x.get_f64(i);
    ctx.check(p >= 0 && p <= 1, "probability " + std::to_string(p) + " is outside [0, 1]");
    out.data<double>()[i] = u(eng) < p ? 1.0 : 0.0;
  }
  ctx.set_output(0, cast_tensor(out, dtype));
}

void multinomial(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()) && x.rank() == 2,
            [&] { return "input must be float [batch_size, class_size], got " + x.describe(); });
  const DType dtype = control::output_dtype(ctx, DType::I32);
  ctx.check(dtype == DType::I32 || dtype == DType::I64, "dtype must be int32 or int64");
  const int64_t samples = ctx.attr_int("sample_size", 1);
  ctx.check(samples >= 1, "sample_size must be positive");
  const int64_t batch = x.dims()[0], classes = x.dims()[1];
  ctx.check(classes >= 1, "class_size must be positive");
  auto eng = control::make_engine(ctx);
  Tensor out(DType::I64, {batch, samples});
  std::vector<double> cdf(static_cast<size_t>(classes));
  for (int64_t b = 0; b < batch; ++b) {
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, x.get_f64(b * classes + c));
    ctx.check(std::isfinite(mx), "row " + std::to_string(b) + " has no finite log-probability");
    double acc = 0;
    for (int64_t c = 0; c < classes; ++c) {
      acc += std::exp(x.get_f64(b * classes + c) - mx);
      cdf[static_cast<size_t>(c)] = acc;
    }
    std::uniform_real_distribution<double> u(0.0, acc);
    for (int64_t s = 0; s < samples; ++s) {
      const double r = u(eng);
      int64_t c = 0;
      while (c < classes - 1 && cdf[static_cast<size_t>(c)] <= r) ++c;
      out.data<int64_t>()[b * samples + s] = c;
    }
  }
  ctx.set_output(0, cast_tensor(out, dtype));
}

}  // namespace

KPT_REGISTER_OP("", "Bernoulli", 1, bernoulli);
KPT_REGISTER_OP("", "Multinomial", 1, multinomial);

}  // namespace kpt::ops
