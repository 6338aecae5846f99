// MatMulInteger and QLinearMatMul: integer matmul of zero-point-shifted operands; QLinearMatMul
// requantizes the int32 result to the output scale and zero point.
#include <cmath>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

bool is_8bit(DType t) {
  return t == DType::U8 || t == DType::I8;
}

// Subtracts a zero point given per tensor, or per row of A (`along_rows`) / per column of B.
std::vector<double> shift(KernelContext& ctx, const Tensor& t, const Tensor* zp, bool along_rows,
                          const char* what) {
  std::vector<double> v = to_f64(t);
  if (zp == nullptr) return v;
  ctx.check(zp->dtype() == t.dtype(), [&] {
    return std::string(what) + " zero point " + zp->describe() + " must have the type of " +
           t.describe();
  });
  const std::vector<double> z = to_f64(*zp);
  if (z.size() == 1) {
    for (double& e : v) e -= z[0];
    return v;
  }
  ctx.check(t.rank() >= 2 && zp->rank() >= 1, [&] {
    return std::string(what) + " zero point " + zp->describe() + " must be a scalar or 1-D";
  });
  const int64_t rows = t.dim(-2), cols = t.dim(-1);
  const int64_t want = along_rows ? rows : cols;
  ctx.check(static_cast<int64_t>(z.size()) == want, [&] {
    return std::string(what) + " zero point " + zp->describe() + " must have " +
           std::to_string(want) + " elements";
  });
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t r = (static_cast<int64_t>(i) / cols) % rows, c = static_cast<int64_t>(i) % cols;
    v[i] -= z[static_cast<size_t>(along_rows ? r : c)];
  }
  return v;
}

void matmul_integer(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  ctx.check(is_8bit(a.dtype()) && is_8bit(b.dtype()), [&] {
    return "A and B must be int8 or uint8, got " + a.describe() + " and " + b.describe();
  });
  const std::vector<double> av =
      shift(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true, "A");
  const std::vector<double> bv =
      shift(ctx, b, ctx.has_input(3) ? &ctx.input(3) : nullptr, false, "B");
  Dims out_dims;
  const std::vector<double> y = matmul_f64(av, a.dims(), bv, b.dims(), out_dims);
  Tensor out(DType::I32, out_dims);
  int32_t* po = out.data<int32_t>();
  for (size_t i = 0; i < y.size(); ++i) po[i] = static_cast<int32_t>(y[i]);
  ctx.set_output(0, out);
}

void qlinear_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& a_scale = ctx.input(1);
  const Tensor& b = ctx.input(3);
  const Tensor& b_scale = ctx.input(4);
  const Tensor& y_scale = ctx.input(6);
  ctx.check(is_8bit(a.dtype()) && is_8bit(b.dtype()), [&] {
    return "a and b must be int8 or uint8, got " + a.describe() + " and " + b.describe();
  });
  const std::vector<double> av =
      shift(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true, "a");
  const std::vector<double> bv =
      shift(ctx, b, ctx.has_input(5) ? &ctx.input(5) : nullptr, false, "b");
  Dims out_dims;
  const std::vector<double> acc = matmul_f64(av, a.dims(), bv, b.dims(), out_dims);
  const DType out_t = ctx.has_input(7) ? ctx.input(7).dtype() : a.dtype();
  ctx.check(is_8bit(out_t), "y_zero_point must be int8 or uint8");
  const std::vector<double> sa = to_f64(a_scale), sb = to_f64(b_scale), sy = to_f64(y_scale);
  const std::vector<double> zy =
      ctx.has_input(7) ? to_f64(ctx.input(7)) : std::vector<double>(1, 0.0);
  ctx.check(sa.size() == 1 || static_cast<int64_t>(sa.size()) == a.dim(-2),
            "a_scale must be a scalar or hold one value per row of a");
  ctx.check(sb.size() == 1 || static_cast<int64_t>(sb.size()) == b.dim(-1),
            "b_scale must be a scalar or hold one value per column of b");
  ctx.check(sy.size() == 1 && zy.size() == 1, "y_scale and y_zero_point must be scalars");
  const int64_t n = out_dims.empty() ? 1 : out_dims.back();
  const int64_t m = out_dims.size() >= 2 ? out_dims[out_dims.size() - 2] : 1;
  const double lo = out_t == DType::U8 ? 0 : -128, hi = out_t == DType::U8 ? 255 : 127;
  // The rescale factor is formed in the scales' type, as the reference computes it.
  const DType st = a_scale.dtype();
  Tensor out(DType::I64, out_dims);
  int64_t* po = out.data<int64_t>();
  for (size_t i = 0; i < acc.size(); ++i) {
    const int64_t col = static_cast<int64_t>(i) % n, row = (static_cast<int64_t>(i) / n) % m;
    const double f =
        round_to(st, round_to(st, sa[sa.size() == 1 ? 0 : static_cast<size_t>(row)] *
                                      sb[sb.size() == 1 ? 0 : static_cast<size_t>(col)]) /
                         sy[0]);
    const double v = std::nearbyint(acc[i] * f) + zy[0];
    po[i] = static_cast<int64_t>(std::min(hi, std::max(lo, v)));
  }
  ctx.set_output(0, cast_tensor(out, out_t));
}

void dynamic_quantize_linear(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.dtype() == DType::F32, [&] { return "x must be float32, got " + x.describe(); });
  const float* px = x.data<float>();
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, px[i]);
    hi = std::max(hi, px[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  float zp = 0;
  if (scale != 0) zp = std::min(255.0f, std::max(0.0f, std::nearbyint((0.0f - lo) / scale)));
  Tensor y(DType::U8, x.dims());
  uint8_t* py = y.data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float q = scale != 0 ? std::nearbyint(px[i] / scale) + zp : zp;
    py[i] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, q)));
  }
  ctx.set_output(0, y);
  ctx.set_output(1, Tensor::scalar<float>(DType::F32, scale));
  ctx.set_output(2, Tensor::scalar<uint8_t>(DType::U8, static_cast<uint8_t>(zp)));
}

}  // namespace

KPT_REGISTER_OP("", "MatMulInteger", 1, matmul_integer);
KPT_REGISTER_OP("", "QLinearMatMul", 1, qlinear_matmul);
KPT_REGISTER_OP("", "DynamicQuantizeLinear", 1, dynamic_quantize_linear);

}  // namespace kpt::ops::nn
