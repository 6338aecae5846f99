// Type conversions: Cast, CastLike (target type taken from a second tensor) and BitCast
// (reinterpreting the bits between types of the same width).
#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "ops/elementwise/elementwise_util.hpp"

namespace kpt::ops {
namespace {

// Before opset 6 Cast's `to` is a string naming the TensorProto type.
DType dtype_from_onnx_name(const KernelContext& ctx, const std::string& name) {
  static const std::array<std::pair<const char*, DType>, 16> names = {{
      {"FLOAT", DType::F32},
      {"UINT8", DType::U8},
      {"INT8", DType::I8},
      {"UINT16", DType::U16},
      {"INT16", DType::I16},
      {"INT32", DType::I32},
      {"INT64", DType::I64},
      {"STRING", DType::String},
      {"BOOL", DType::Bool},
      {"FLOAT16", DType::F16},
      {"DOUBLE", DType::F64},
      {"UINT32", DType::U32},
      {"UINT64", DType::U64},
      {"BFLOAT16", DType::BF16},
      {"COMPLEX64", DType::Complex64},
      {"COMPLEX128", DType::Complex128},
  }};
  for (const auto& [n, t] : names) {
    if (name == n) return t;
  }
  ctx.fail("attribute 'to' names an unknown type '" + name + "'");
}

DType target_dtype(const KernelContext& ctx) {
  const ir::Attribute* a = ctx.node().attr("to");
  ctx.check(a != nullptr, "attribute 'to' is required");
  if (a->kind == ir::Attribute::Kind::String) return dtype_from_onnx_name(ctx, a->s);
  const int64_t code = a->i;
  ctx.check(code > 0 && code <= 64 && is_valid_dtype(static_cast<int32_t>(code)),
            "attribute 'to' = " + std::to_string(code) + " is not a known element type");
  return static_cast<DType>(code);
}

// FLOAT8E8M0 with Cast's round_mode, working on the float32 bits as ONNX's reference does
// (the sign is dropped; "up" rounds away from zero, "down" toward zero, "nearest" to the
// nearer power of two with ties rounding up).
uint8_t to_e8m0(float f, bool saturate, const std::string& mode) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t exp = (x >> 23) & 0xFFu;
  const uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return (mant != 0 || !saturate) ? 0xFF : 0xFE;
  uint32_t code = exp;
  if (mode == "up") {
    code += mant != 0 ? 1u : 0u;
  } else if (mode == "nearest") {
    code += (mant & 0x400000u) != 0 ? 1u : 0u;
  }
  if (code > 0xFE) return saturate ? 0xFE : 0xFF;
  return static_cast<uint8_t>(code);
}

Tensor convert(const KernelContext& ctx, const Tensor& x, DType to) {
  ctx.check(to != DType::Complex64 && to != DType::Complex128 && x.dtype() != DType::Complex64 &&
                x.dtype() != DType::Complex128,
            "complex types are not supported by Cast");
  const bool saturate = ctx.opset() < 19 || ctx.attr_int("saturate", 1) != 0;
  if (to == DType::F8E8M0 && x.dtype() != DType::F8E8M0) {
    const std::string mode = ctx.attr_string("round_mode", "up");
    if (mode != "up" && mode != "down" && mode != "nearest") {
      ctx.fail("round_mode must be 'up', 'down' or 'nearest', got '" + mode + "'");
    }
    const Tensor f = cast_tensor(x, DType::F32, saturate);
    Tensor out(DType::F8E8M0, x.dims());
    const float* pf = f.data<float>();
    auto* po = out.data<uint8_t>();
    for (int64_t i = 0; i < f.numel(); ++i) po[i] = to_e8m0(pf[i], saturate, mode);
    return out;
  }
  return cast_tensor(x, to, saturate);
}

void cast_kernel(KernelContext& ctx) {
  ctx.set_output(0, convert(ctx, ctx.input(0), target_dtype(ctx)));
}

void cast_like(KernelContext& ctx) {
  ctx.set_output(0, convert(ctx, ctx.input(0), ctx.input(1).dtype()));
}

bool is_sub_byte(DType t) {
  return packed_bits(t) < 8;
}

void bit_cast(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType to = target_dtype(ctx);
  ctx.check(x.dtype() != DType::String && to != DType::String, "BitCast does not accept strings");
  ctx.check(packed_bits(x.dtype()) == packed_bits(to),
            "BitCast needs types of the same width; " + std::string(dtype_name(x.dtype())) +
                " has " + std::to_string(packed_bits(x.dtype())) + " bits and " +
                std::string(dtype_name(to)) + " has " + std::to_string(packed_bits(to)));
  Tensor out(to, x.dims());
  if (!is_sub_byte(to)) {
    std::memcpy(out.raw(), x.raw(), x.nbytes());
    if (to == DType::Bool) {
      // Any non-zero byte reads as true; keep bool storage canonical.
      auto* p = out.data<uint8_t>();
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = p[i] != 0 ? 1 : 0;
    }
  } else {
    // Sub-byte elements sit one per byte, sign-extended for signed types: keep the low bits
    // and extend them again for the target.
    const int bits = packed_bits(to);
    const auto mask = static_cast<uint8_t>((1u << bits) - 1);
    const auto* src = x.data<uint8_t>();
    auto* dst = out.data<uint8_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto v = static_cast<uint8_t>(src[i] & mask);
      if (is_signed_integer(to) && (v >> (bits - 1)) != 0) v = static_cast<uint8_t>(v | ~mask);
      dst[i] = v;
    }
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "Cast", 1, cast_kernel);
KPT_REGISTER_OP("", "CastLike", 15, cast_like);
KPT_REGISTER_OP("", "BitCast", 26, bit_cast);

}  // namespace kpt::ops
