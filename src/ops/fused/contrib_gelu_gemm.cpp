// ONNX Runtime contrib ops that `kpt export` writes (src/export), so that kpt runs the files
// it exports: com.microsoft Gelu (erf), FastGelu (tanh form, optional bias), BiasGelu (erf of
// A + bias) and FusedGemm (Gemm with an activation).
#include <cmath>
#include <numbers>

#include "analysis/infer_util.hpp"
#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::fused {
namespace {

using nn::from_f64;
using nn::to_f64;

double gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
}

double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

// f(X + bias) with an optional bias over the last axis (input 1).
void gelu_with_bias(KernelContext& ctx, double (*f)(double)) {
  const Tensor& x = ctx.input(0);
  ctx.check(is_float(x.dtype()), "input must be a float tensor, got " + x.describe());
  std::vector<double> y = to_f64(x);
  if (ctx.has_input(1)) {
    const Tensor& b = ctx.input(1);
    ctx.check(b.rank() == 1 && x.rank() >= 1 && b.dim(0) == x.dim(-1) && b.dtype() == x.dtype(),
              "bias must be 1-D of the input's last dim and type, got " + b.describe() +
                  " for input " + x.describe());
    const std::vector<double> bv = to_f64(b);
    for (size_t i = 0; i < y.size(); ++i) y[i] += bv[i % bv.size()];
  }
  for (double& v : y) v = f(v);
  ctx.set_output(0, from_f64(y, x.dims(), x.dtype()));
}

void gelu(KernelContext& ctx) {
  ctx.check(!ctx.has_input(1), "com.microsoft.Gelu takes one input");
  gelu_with_bias(ctx, gelu_erf);
}

void bias_gelu(KernelContext& ctx) {
  ctx.check(ctx.has_input(1), "BiasGelu needs its bias input");
  gelu_with_bias(ctx, gelu_erf);
}

void fast_gelu(KernelContext& ctx) {
  gelu_with_bias(ctx, gelu_tanh);
}

double activate(KernelContext& ctx, const std::string& act, double v) {
  if (act.empty()) return v;
  if (act == "Relu") return v > 0 ? v : 0.0;
  if (act == "Sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (act == "Tanh") return std::tanh(v);
  if (act == "LeakyRelu") return v >= 0 ? v : v * ctx.attr_float("activation_alpha", 0.01f);
  ctx.unsupported("FusedGemm activation '" + act + "' (expected Relu, Sigmoid, Tanh, LeakyRelu)");
}

// Y = activation(alpha * A' B' + beta * C), A' and B' optionally transposed 2-D matrices.
void fused_gemm(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ctx.check(a.rank() == 2 && b.rank() == 2 && is_float(a.dtype()) && b.dtype() == a.dtype(),
            "A and B must be 2-D float tensors of one type, got " + a.describe() + " and " +
                b.describe());
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  ctx.check((tb ? b.dim(1) : b.dim(0)) == k,
            "A " + a.describe() + " and B " + b.describe() + " do not multiply");
  const double alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const std::string act = ctx.attr_string("activation", "");
  const std::vector<double> av = to_f64(a), bv = to_f64(b);
  std::vector<double> c;
  std::vector<int64_t> c_off;
  const Dims out{m, n};
  if (ctx.has_input(2)) {
    const Tensor& ct = ctx.input(2);
    ctx.check(broadcast_dims(out, ct.dims()) == out,
              "C " + ct.describe() + " does not broadcast onto " + dims_to_string(out));
    c = to_f64(ct);
    c_off = broadcast_offsets(out, ct.dims());
  }
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += av[static_cast<size_t>(ta ? p * m + i : i * k + p)] *
               bv[static_cast<size_t>(tb ? j * k + p : p * n + j)];
      const size_t o = static_cast<size_t>(i * n + j);
      double v = alpha * acc;
      if (!c.empty()) v += beta * c[static_cast<size_t>(c_off[o])];
      y[o] = activate(ctx, act, v);
    }
  ctx.set_output(0, from_f64(y, out, a.dtype()));
}

void infer_same_as_input(InferContext& ctx) {
  analysis::same_as_input(ctx, 0, 0);
}

void infer_fused_gemm(InferContext& ctx) {
  const InferFn gemm = Registry::instance().find_infer("", "Gemm", 13);
  if (gemm != nullptr) gemm(ctx);
}

}  // namespace

KPT_REGISTER_OP("com.microsoft", "Gelu", 1, gelu, infer_same_as_input);
KPT_REGISTER_OP("com.microsoft", "BiasGelu", 1, bias_gelu, infer_same_as_input);
KPT_REGISTER_OP("com.microsoft", "FastGelu", 1, fast_gelu, infer_same_as_input);
KPT_REGISTER_OP("com.microsoft", "FusedGemm", 1, fused_gemm);
KPT_REGISTER_INFER("com.microsoft", "FusedGemm", infer_fused_gemm);

}  // namespace kpt::ops::fused
