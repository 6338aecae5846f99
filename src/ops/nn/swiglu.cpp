// SwiGLU: Swish(a) * b with Swish(a) = a * sigmoid(alpha * a); a and b broadcast.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

void swiglu(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ctx.check(is_float(a.dtype()) && a.dtype() == b.dtype(), [&] {
    return "inputs must be float tensors of one type, got " + a.describe() + " and " + b.describe();
  });
  const double alpha = ctx.attr_float("alpha", 1.0f);
  const Dims out_dims = broadcast_dims(a.dims(), b.dims());
  const auto oa = broadcast_offsets(out_dims, a.dims());
  const auto ob = broadcast_offsets(out_dims, b.dims());
  const std::vector<double> av = to_f64(a), bv = to_f64(b);
  std::vector<double> y(oa.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const double x = av[static_cast<size_t>(oa[i])];
    y[i] = x / (1.0 + std::exp(-alpha * x)) * bv[static_cast<size_t>(ob[i])];
  }
  ctx.set_output(0, from_f64(y, out_dims, a.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "SwiGLU", 1, swiglu);

}  // namespace kpt::ops::nn
