// kpt.MatMulBiasAct: Y = act(MatMul(A, B) + C). The one MatMul epilogue op that the optimizer
// fuses linear layers into (fuse_matmul_add); fast backends run the bias and activation in the
// GEMM's epilogue. A and B follow MatMul (numpy broadcasting, 1-D operands promoted); C is
// optional and must broadcast onto the MatMul result without growing it (usually [N]).
// activation: "" (none), "Relu", "Gelu" (erf), "GeluTanh", "Silu", "Sigmoid", "Tanh".
#include <cmath>
#include <numbers>

#include "analysis/infer_util.hpp"
#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::fused {
namespace {

using nn::from_f64;
using nn::to_f64;

enum class Act { None, Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh };

Act parse_activation(const KernelContext& ctx) {
  const std::string a = ctx.attr_string("activation", "");
  if (a.empty()) return Act::None;
  if (a == "Relu") return Act::Relu;
  if (a == "Gelu") return Act::Gelu;
  if (a == "GeluTanh") return Act::GeluTanh;
  if (a == "Silu") return Act::Silu;
  if (a == "Sigmoid") return Act::Sigmoid;
  if (a == "Tanh") return Act::Tanh;
  ctx.fail("activation must be one of \"\", Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh; got \"" + a +
           "\"");
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

double apply(Act act, double x) {
  switch (act) {
    case Act::None:
      return x;
    case Act::Relu:
      return x > 0 ? x : 0.0;
    case Act::Gelu:
      return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
    case Act::GeluTanh: {
      const double k = std::sqrt(2.0 / std::numbers::pi);
      return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
    }
    case Act::Silu:
      return x * sigmoid(x);
    case Act::Sigmoid:
      return sigmoid(x);
    case Act::Tanh:
      return std::tanh(x);
  }
  return x;
}

void matmul_bias_act(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ctx.check(is_float(a.dtype()) && a.dtype() == b.dtype(), [&] {
    return "A and B must be float tensors of one type, got " + a.describe() + " and " +
           b.describe();
  });
  const Act act = parse_activation(ctx);
  Dims out_dims;
  std::vector<double> y = nn::matmul_f64(to_f64(a), a.dims(), to_f64(b), b.dims(), out_dims);
  if (ctx.has_input(2)) {
    const Tensor& c = ctx.input(2);
    ctx.check(c.dtype() == a.dtype(), [&] { return "C must have A's type, got " + c.describe(); });
    ctx.check(broadcast_dims(out_dims, c.dims()) == out_dims, [&] {
      return "C " + c.describe() + " does not broadcast onto the product's shape " +
             dims_to_string(out_dims);
    });
    const std::vector<double> cv = to_f64(c);
    const auto off = broadcast_offsets(out_dims, c.dims());
    for (size_t i = 0; i < y.size(); ++i) y[i] += cv[static_cast<size_t>(off[i])];
  }
  for (double& v : y) v = apply(act, v);
  ctx.set_output(0, from_f64(y, out_dims, a.dtype()));
}

// The MatMul shape rule; C does not change the shape (the kernel rejects a C that would).
void infer_matmul_bias_act(InferContext& ctx) {
  const DType dtype = analysis::input_dtype(ctx, 0);
  auto a = analysis::input_shape(ctx, 0), b = analysis::input_shape(ctx, 1);
  if (!a || !b || a->empty() || b->empty()) {
    analysis::set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const bool a_vector = a->size() == 1, b_vector = b->size() == 1;
  ir::Shape sa = *a, sb = *b;
  if (a_vector) sa.insert(sa.begin(), ir::Dim::of(1));
  if (b_vector) sb.push_back(ir::Dim::of(1));
  ir::Shape out = analysis::broadcast_shapes(ir::Shape(sa.begin(), sa.end() - 2),
                                             ir::Shape(sb.begin(), sb.end() - 2));
  if (!a_vector) out.push_back(sa[sa.size() - 2]);
  if (!b_vector) out.push_back(sb.back());
  analysis::set_output(ctx, 0, dtype, out);
}

}  // namespace

KPT_REGISTER_OP("kpt", "MatMulBiasAct", 1, matmul_bias_act, infer_matmul_bias_act);

}  // namespace kpt::ops::fused
