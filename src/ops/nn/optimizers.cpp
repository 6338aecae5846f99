// Training-domain optimizers (ai.onnx.preview.training): Adagrad, Momentum, Adam. Each takes a
// learning rate R, an iteration count T, then n tensors of each state kind, and returns the
// updated tensors grouped the same way.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

// Splits the inputs after R and T into `groups` lists of n tensors each, checked to match.
int64_t group_size(KernelContext& ctx, int64_t groups) {
  const auto rest = static_cast<int64_t>(ctx.num_inputs()) - 2;
  ctx.check(rest > 0 && rest % groups == 0, "expected R, T and " + std::to_string(groups) +
                                                " equal groups of tensors, got " +
                                                std::to_string(ctx.num_inputs()) + " inputs");
  const int64_t n = rest / groups;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 1; g < groups; ++g) {
      const Tensor& x = ctx.input(static_cast<size_t>(2 + i));
      const Tensor& o = ctx.input(static_cast<size_t>(2 + g * n + i));
      ctx.check(x.dims() == o.dims(), [&] {
        return "tensor " + o.describe() + " does not match " + x.describe() + " it updates with";
      });
    }
  return n;
}

std::vector<double> in(KernelContext& ctx, int64_t idx) {
  return to_f64(ctx.input(static_cast<size_t>(idx)));
}

void out(KernelContext& ctx, int64_t idx, const std::vector<double>& v, const Tensor& like) {
  ctx.set_output(static_cast<size_t>(idx), from_f64(v, like.dims(), like.dtype()));
}

void adagrad(KernelContext& ctx) {
  const int64_t n = group_size(ctx, 3);
  const double r0 = ctx.input(0).get_f64(0);
  const double t = static_cast<double>(ctx.input(1).get_i64(0));
  const double decay = ctx.attr_float("decay_factor", 0.0f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double r = r0 / (1 + t * decay);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> x = in(ctx, 2 + i), g = in(ctx, 2 + n + i), h = in(ctx, 2 + 2 * n + i);
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      h[k] += gr * gr;
      x[k] -= r * gr / (std::sqrt(h[k]) + eps);
    }
    out(ctx, i, x, ctx.input(static_cast<size_t>(2 + i)));
    out(ctx, n + i, h, ctx.input(static_cast<size_t>(2 + 2 * n + i)));
  }
}

void momentum(KernelContext& ctx) {
  const int64_t n = group_size(ctx, 3);
  const double r = ctx.input(0).get_f64(0);
  const int64_t t = ctx.input(1).get_i64(0);
  const double alpha = ctx.attr_float("alpha", 0.0f);
  const double beta = ctx.attr_float("beta", 0.0f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const std::string mode = ctx.attr_string("mode", "standard");
  ctx.check(mode == "standard" || mode == "nesterov",
            "mode must be \"standard\" or \"nesterov\", got \"" + mode + "\"");
  const double beta_adj = t > 0 ? beta : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> x = in(ctx, 2 + i), g = in(ctx, 2 + n + i), v = in(ctx, 2 + 2 * n + i);
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      v[k] = alpha * v[k] + beta_adj * gr;
      x[k] -= mode == "nesterov" ? r * (gr + alpha * v[k]) : r * v[k];
    }
    out(ctx, i, x, ctx.input(static_cast<size_t>(2 + i)));
    out(ctx, n + i, v, ctx.input(static_cast<size_t>(2 + 2 * n + i)));
  }
}

void adam(KernelContext& ctx) {
  const int64_t n = group_size(ctx, 4);
  const double r = ctx.input(0).get_f64(0);
  const double t = static_cast<double>(ctx.input(1).get_i64(0));
  const double alpha = ctx.attr_float("alpha", 0.9f);
  const double beta = ctx.attr_float("beta", 0.999f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double norm_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  const double r_adj = t > 0 ? r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t)) : r;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> x = in(ctx, 2 + i), g = in(ctx, 2 + n + i), v = in(ctx, 2 + 2 * n + i),
                        h = in(ctx, 2 + 3 * n + i);
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      v[k] = alpha * v[k] + (1 - alpha) * gr;
      h[k] = beta * h[k] + (1 - beta) * gr * gr;
      x[k] = (1 - norm_post) * (x[k] - r_adj * (v[k] / (std::sqrt(h[k]) + eps)));
    }
    out(ctx, i, x, ctx.input(static_cast<size_t>(2 + i)));
    out(ctx, n + i, v, ctx.input(static_cast<size_t>(2 + 2 * n + i)));
    out(ctx, 2 * n + i, h, ctx.input(static_cast<size_t>(2 + 3 * n + i)));
  }
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.preview.training", "Adagrad", 1, adagrad);
KPT_REGISTER_OP("ai.onnx.preview.training", "Momentum", 1, momentum);
KPT_REGISTER_OP("ai.onnx.preview.training", "Adam", 1, adam);

}  // namespace kpt::ops::nn
