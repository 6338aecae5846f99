// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is NLL over LogSoftmax along
// the class axis 1).
#include <cmath>
#include <limits>
#include <optional>

#include "ops/math/math_util.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

// Log-softmax along axis 1 of [N, C, D...] (computed in double).
std::vector<double> log_softmax_axis1(const std::vector<double>& x, int64_t n, int64_t c,
                                      int64_t d) {
  std::vector<double> out(x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      auto at = [&](int64_t k) { return (i * c + k) * d + j; };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < c; ++k) m = std::max(m, x[at(k)]);
      double s = 0;
      for (int64_t k = 0; k < c; ++k) s += std::exp(x[at(k)] - m);
      const double lse = m + std::log(s);
      for (int64_t k = 0; k < c; ++k) out[at(k)] = x[at(k)] - lse;
    }
  return out;
}

// NLL of log-probabilities `logp` [N, C, D...] against `target` [N, D...]; writes output 0.
void nll(KernelContext& ctx, const std::vector<double>& logp, const Dims& in_dims, DType out_type) {
  const Tensor& target = ctx.input(1);
  ctx.check(in_dims.size() >= 2,
            "input must be [N, C, d1, ...], got rank " + std::to_string(in_dims.size()));
  ctx.check(target.dtype() == DType::I32 || target.dtype() == DType::I64,
            [&] { return "target must be int32 or int64, got " + target.describe(); });
  Dims expect_target{in_dims[0]};
  expect_target.insert(expect_target.end(), in_dims.begin() + 2, in_dims.end());
  ctx.check(target.dims() == expect_target, [&] {
    return "target " + target.describe() + " must have shape " + dims_to_string(expect_target) +
           " (input " + dims_to_string(in_dims) + " without axis 1)";
  });
  const int64_t n = in_dims[0];
  const int64_t c = in_dims[1];
  const int64_t d = math::dims_product(in_dims, 2, in_dims.size());
  std::optional<int64_t> ignore;
  if (ctx.node().has_attr("ignore_index")) ignore = ctx.attr_int("ignore_index", 0);
  Tensor weight;
  if (ctx.has_input(2)) {
    weight = cast_tensor(ctx.input(2), DType::F64);
    ctx.check(weight.rank() == 1 && weight.dims()[0] == c, [&] {
      return "weight must be [C] = [" + std::to_string(c) + "], got " + ctx.input(2).describe();
    });
  }
  const std::string reduction = ctx.attr_string("reduction", "mean");
  ctx.check(reduction == "none" || reduction == "sum" || reduction == "mean",
            "reduction must be none, sum or mean, got '" + reduction + "'");

  std::vector<double> loss(static_cast<size_t>(n * d));
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const int64_t t = target.get_i64(i * d + j);
      double w = 0, l = 0;
      if (!(ignore && t == *ignore)) {
        ctx.check(t >= 0 && t < c, "target value " + std::to_string(t) +
                                       " is outside the class range [0, " + std::to_string(c) +
                                       ")");
        w = weight.defined() ? weight.data<double>()[t] : 1.0;
        l = -logp[(i * c + t) * d + j] * w;
      }
      loss[i * d + j] = l;
      loss_sum += l;
      weight_sum += w;
    }

  Tensor out;
  if (reduction == "none") {
    out = Tensor(DType::F64, expect_target);
    std::copy(loss.begin(), loss.end(), out.data<double>());
  } else {
    out = Tensor(DType::F64, {});
    *out.data<double>() = reduction == "sum" ? loss_sum : loss_sum / weight_sum;
  }
  ctx.set_output(0, cast_tensor(out, out_type));
}

std::vector<double> as_doubles(const Tensor& t) {
  const Tensor d = cast_tensor(t, DType::F64);
  return std::vector<double>(d.data<double>(), d.data<double>() + d.numel());
}

void check_float(KernelContext& ctx, const Tensor& t) {
  ctx.check(is_float(t.dtype()),
            [&] { return "input must be a float tensor, got " + t.describe(); });
}

void negative_log_likelihood_loss(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  check_float(ctx, x);
  nll(ctx, as_doubles(x), x.dims(), x.dtype());
}

void softmax_cross_entropy_loss(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  check_float(ctx, x);
  ctx.check(x.rank() >= 2, [&] { return "scores must be [N, C, d1, ...], got " + x.describe(); });
  const int64_t d = math::dims_product(x.dims(), 2, x.rank());
  const std::vector<double> logp = log_softmax_axis1(as_doubles(x), x.dims()[0], x.dims()[1], d);
  nll(ctx, logp, x.dims(), x.dtype());
  if (ctx.wants_output(1)) {
    Tensor lp(DType::F64, x.dims());
    std::copy(logp.begin(), logp.end(), lp.data<double>());
    ctx.set_output(1, cast_tensor(lp, x.dtype()));
  }
}

}  // namespace

KPT_REGISTER_OP("", "NegativeLogLikelihoodLoss", 1, negative_log_likelihood_loss);
KPT_REGISTER_OP("", "SoftmaxCrossEntropyLoss", 1, softmax_cross_entropy_loss);

}  // namespace kpt::ops
