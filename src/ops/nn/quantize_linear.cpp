// QuantizeLinear and DequantizeLinear: per-tensor, per-axis and blocked scales (opsets 10-25),
// integer (2/4/8/16-bit) and float (fp8/fp4) quantized types.
#include <cmath>
#include <limits>

#include "ops/nn/nn_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::nn {
namespace {

// Maps each element of x to the element of scale (and zero point) that applies to it.
std::vector<int64_t> scale_index(KernelContext& ctx, const Tensor& x, const Tensor& scale) {
  const int64_t n = x.numel();
  std::vector<int64_t> idx(static_cast<size_t>(n), 0);
  if (scale.numel() == 1 && scale.rank() <= 1) return idx;
  ctx.check(ctx.opset() >= 13,
            [&] { return "scale must be a scalar before opset 13, got " + scale.describe(); });
  const int64_t rank = static_cast<int64_t>(x.rank());
  ctx.check(rank >= 1,
            [&] { return "x must have rank >= 1 for a per-axis scale, got " + x.describe(); });
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 1), rank);
  const auto a = static_cast<size_t>(axis);
  const int64_t outer = product(x.dims(), 0, a), len = x.dims()[a],
                inner = product(x.dims(), a + 1, x.rank());
  const int64_t block = ctx.attr_int("block_size", 0);
  if (block <= 0) {
    ctx.check(scale.rank() == 1 && scale.dim(0) == len, [&] {
      return "a per-axis scale must be 1-D of size " + std::to_string(len) + " (x dim " +
             std::to_string(axis) + "), got " + scale.describe();
    });
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < inner; ++j) idx[static_cast<size_t>((o * len + i) * inner + j)] = i;
    return idx;
  }
  ctx.check(scale.rank() == x.rank(), [&] {
    return "a blocked scale must have the rank of x " + x.describe() + ", got " + scale.describe();
  });
  for (size_t d = 0; d < x.rank(); ++d)
    if (d != a)
      ctx.check(scale.dims()[d] == x.dims()[d], [&] {
        return "blocked scale " + scale.describe() + " must match x " + x.describe() +
               " outside the axis";
      });
  const int64_t blocks = scale.dims()[a];
  ctx.check(blocks == (len + block - 1) / block, "blocked scale has " + std::to_string(blocks) +
                                                     " blocks along the axis; expected ceil(" +
                                                     std::to_string(len) + "/" +
                                                     std::to_string(block) + ")");
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < len; ++i)
      for (int64_t j = 0; j < inner; ++j)
        idx[static_cast<size_t>((o * len + i) * inner + j)] = (o * blocks + i / block) * inner + j;
  return idx;
}

std::pair<double, double> int_range(DType t) {
  switch (t) {
    case DType::U8:
      return {0, 255};
    case DType::I8:
      return {-128, 127};
    case DType::U16:
      return {0, 65535};
    case DType::I16:
      return {-32768, 32767};
    case DType::U4:
      return {0, 15};
    case DType::I4:
      return {-8, 7};
    case DType::U2:
      return {0, 3};
    case DType::I2:
      return {-2, 1};
    case DType::I32:
      return {-2147483648.0, 2147483647.0};
    case DType::U32:
      return {0, 4294967295.0};
    default:
      unsupported("QuantizeLinear does not support output type " + std::string(dtype_name(t)));
  }
}

void check_zero_point(KernelContext& ctx, const Tensor& scale, const Tensor& zp) {
  ctx.check(zp.dims() == scale.dims() || (zp.numel() == 1 && scale.numel() == 1), [&] {
    return "zero point " + zp.describe() + " must have the shape of the scale " + scale.describe();
  });
}

void quantize_linear(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  ctx.check(is_float(x.dtype()) || x.dtype() == DType::I32,
            [&] { return "x must be float or int32, got " + x.describe(); });
  DType out = DType::U8;
  const int64_t output_dtype = ctx.attr_int("output_dtype", 0);
  std::vector<double> zp;
  if (ctx.has_input(2)) {
    const Tensor& z = ctx.input(2);
    check_zero_point(ctx, scale, z);
    out = z.dtype();
    ctx.check(output_dtype == 0 || output_dtype == static_cast<int64_t>(out),
              [&] { return "output_dtype disagrees with the zero point type " + z.describe(); });
    zp = to_f64(z);
  } else if (output_dtype != 0) {
    ctx.check(is_valid_dtype(static_cast<int32_t>(output_dtype)),
              "output_dtype " + std::to_string(output_dtype) + " is not an element type");
    out = static_cast<DType>(output_dtype);
  }
  const bool saturate = ctx.attr_int("saturate", 1) != 0;
  const std::vector<int64_t> si = scale_index(ctx, x, scale);
  const std::vector<double> xv = to_f64(x), sv = to_f64(scale);
  // Single-precision inputs divide in single precision, as the ONNX reference does, so that
  // results landing on .5 round the same way.
  const bool single = x.dtype() != DType::F64 && scale.dtype() != DType::F64;
  std::vector<double> q(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const auto k = static_cast<size_t>(si[i]);
    q[i] = single ? static_cast<double>(static_cast<float>(xv[i]) / static_cast<float>(sv[k]))
                  : xv[i] / sv[k];
    // Half-precision x and scale divide in half precision, as numpy does for the reference.
    if (is_storage_float(x.dtype()) && scale.dtype() == x.dtype()) q[i] = round_to(x.dtype(), q[i]);
  }
  if (is_float(out)) {
    for (size_t i = 0; i < q.size(); ++i) q[i] += zp.empty() ? 0.0 : zp[static_cast<size_t>(si[i])];
    Tensor f(DType::F32, x.dims());
    float* pf = f.data<float>();
    for (size_t i = 0; i < q.size(); ++i) pf[i] = static_cast<float>(q[i]);
    ctx.set_output(0, cast_tensor(f, out, saturate));
    return;
  }
  const auto [lo, hi] = int_range(out);
  Tensor r(DType::I64, x.dims());
  int64_t* pr = r.data<int64_t>();
  for (size_t i = 0; i < q.size(); ++i) {
    double v = std::nearbyint(q[i]) + (zp.empty() ? 0.0 : zp[static_cast<size_t>(si[i])]);
    if (std::isnan(v)) v = 0;
    pr[i] = static_cast<int64_t>(std::min(hi, std::max(lo, v)));
  }
  ctx.set_output(0, cast_tensor(r, out));
}

void dequantize_linear(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  ctx.check(is_float(scale.dtype()),
            [&] { return "x_scale must be a float tensor, got " + scale.describe(); });
  std::vector<double> zp;
  if (ctx.has_input(2)) {
    const Tensor& z = ctx.input(2);
    check_zero_point(ctx, scale, z);
    ctx.check(z.dtype() == x.dtype(), [&] {
      return "zero point " + z.describe() + " must have the type of x " + x.describe();
    });
    zp = to_f64(z);
  }
  DType out = scale.dtype();
  const int64_t output_dtype = ctx.attr_int("output_dtype", 0);
  if (output_dtype != 0) {
    ctx.check(is_valid_dtype(static_cast<int32_t>(output_dtype)) &&
                  is_float(static_cast<DType>(output_dtype)),
              "output_dtype " + std::to_string(output_dtype) + " is not a float element type");
    out = static_cast<DType>(output_dtype);
  }
  const std::vector<int64_t> si = scale_index(ctx, x, scale);
  const std::vector<double> xv = to_f64(x), sv = to_f64(scale);
  std::vector<double> y(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const auto k = static_cast<size_t>(si[i]);
    y[i] = (xv[i] - (zp.empty() ? 0.0 : zp[k])) * sv[k];
  }
  ctx.set_output(0, from_f64(y, x.dims(), out));
}

}  // namespace

KPT_REGISTER_OP("", "QuantizeLinear", 1, quantize_linear);
KPT_REGISTER_OP("", "DequantizeLinear", 1, dequantize_linear);

}  // namespace kpt::ops::nn
