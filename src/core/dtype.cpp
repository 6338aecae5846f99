#include "kpt/dtype.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "kpt/error.hpp"

namespace kpt {

namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
  int bits;
};

constexpr std::array<DTypeInfo, 27> kInfo = {{
    {DType::Undefined, "undefined", 0, 0},
    {DType::F32, "f32", 4, 32},
    {DType::U8, "u8", 1, 8},
    {DType::I8, "i8", 1, 8},
    {DType::U16, "u16", 2, 16},
    {DType::I16, "i16", 2, 16},
    {DType::I32, "i32", 4, 32},
    {DType::I64, "i64", 8, 64},
    {DType::String, "string", 0, 0},
    {DType::Bool, "bool", 1, 8},
    {DType::F16, "f16", 2, 16},
    {DType::F64, "f64", 8, 64},
    {DType::U32, "u32", 4, 32},
    {DType::U64, "u64", 8, 64},
    {DType::Complex64, "complex64", 8, 64},
    {DType::Complex128, "complex128", 16, 128},
    {DType::BF16, "bf16", 2, 16},
    {DType::F8E4M3FN, "f8e4m3fn", 1, 8},
    {DType::F8E4M3FNUZ, "f8e4m3fnuz", 1, 8},
    {DType::F8E5M2, "f8e5m2", 1, 8},
    {DType::F8E5M2FNUZ, "f8e5m2fnuz", 1, 8},
    {DType::U4, "u4", 1, 4},
    {DType::I4, "i4", 1, 4},
    {DType::F4E2M1, "f4e2m1", 1, 4},
    {DType::F8E8M0, "f8e8m0", 1, 8},
    {DType::U2, "u2", 1, 2},
    {DType::I2, "i2", 1, 2},
}};

const DTypeInfo& info(DType t) {
  auto code = static_cast<int32_t>(t);
  if (code < 0 || code >= static_cast<int32_t>(kInfo.size())) {
    fail("unknown element type code " + std::to_string(code));
  }
  return kInfo[static_cast<size_t>(code)];
}

// Parameters of a small float format: exponent and mantissa bits, bias, and its special values.
struct MiniFloat {
  int ebits, mbits, bias;
  bool fnuz;     // no negative zero; 0x80 is NaN
  bool has_inf;  // IEEE-like inf/NaN at the top exponent (E5M2)
  float max;
};

MiniFloat minifloat(DType t) {
  switch (t) {
    case DType::F8E4M3FN:
      return {4, 3, 7, false, false, 448.0f};
    case DType::F8E4M3FNUZ:
      return {4, 3, 8, true, false, 240.0f};
    case DType::F8E5M2:
      return {5, 2, 15, false, true, 57344.0f};
    case DType::F8E5M2FNUZ:
      return {5, 2, 16, true, false, 57344.0f};
    default:
      fail("not an fp8 type: " + std::string(dtype_name(t)));
  }
}

uint8_t nan_code(const MiniFloat& m) {
  if (m.fnuz) return 0x80;
  return m.has_inf ? 0x7F : 0x7F;
}

uint8_t encode_magnitude(double a, const MiniFloat& m) {
  // a is finite, already rounded to a representable value, and <= max.
  const double min_normal = std::ldexp(1.0, 1 - m.bias);
  if (a < min_normal) {
    auto mant = static_cast<uint32_t>(a / std::ldexp(1.0, 1 - m.bias - m.mbits));
    return static_cast<uint8_t>(mant);
  }
  int e = std::ilogb(a);
  auto mant = static_cast<uint32_t>(a / std::ldexp(1.0, e - m.mbits)) - (1u << m.mbits);
  return static_cast<uint8_t>((static_cast<uint32_t>(e + m.bias) << m.mbits) | mant);
}

// Rounds |f| to the format's grid with ties to even (no range check).
double round_to_grid(double a, const MiniFloat& m) {
  if (a == 0) return 0;
  int e = std::max(std::ilogb(a), 1 - m.bias);
  double step = std::ldexp(1.0, e - m.mbits);
  return std::nearbyint(a / step) * step;
}

}  // namespace

size_t dtype_size(DType t) {
  if (t == DType::String) return sizeof(std::string);
  return info(t).size;
}
int packed_bits(DType t) {
  return info(t).bits;
}
std::string_view dtype_name(DType t) {
  return info(t).name;
}
bool is_valid_dtype(int32_t code) {
  return code > 0 && code < static_cast<int32_t>(kInfo.size());
}

DType dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo) {
    if (i.name == name && i.type != DType::Undefined) return i.type;
  }
  static const std::array<std::pair<std::string_view, DType>, 14> aliases = {{
      {"float", DType::F32},
      {"float32", DType::F32},
      {"double", DType::F64},
      {"float64", DType::F64},
      {"float16", DType::F16},
      {"half", DType::F16},
      {"bfloat16", DType::BF16},
      {"int8", DType::I8},
      {"int16", DType::I16},
      {"int32", DType::I32},
      {"int64", DType::I64},
      {"uint8", DType::U8},
      {"uint32", DType::U32},
      {"uint64", DType::U64},
  }};
  for (const auto& [alias, t] : aliases) {
    if (alias == name) return t;
  }
  fail("unknown element type name '" + std::string(name) + "'");
}

bool is_float(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F64:
    case DType::F16:
    case DType::BF16:
    case DType::F8E4M3FN:
    case DType::F8E4M3FNUZ:
    case DType::F8E5M2:
    case DType::F8E5M2FNUZ:
    case DType::F4E2M1:
    case DType::F8E8M0:
      return true;
    default:
      return false;
  }
}
bool is_signed_integer(DType t) {
  return t == DType::I8 || t == DType::I16 || t == DType::I32 || t == DType::I64 ||
         t == DType::I4 || t == DType::I2;
}
bool is_unsigned_integer(DType t) {
  return t == DType::U8 || t == DType::U16 || t == DType::U32 || t == DType::U64 ||
         t == DType::U4 || t == DType::U2;
}
bool is_integer(DType t) {
  return is_signed_integer(t) || is_unsigned_integer(t);
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) half_mant++;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // may carry into exponent: correct
  return static_cast<uint16_t>(h);
}

float half_to_float(uint16_t h) {
  uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      float v = std::ldexp(static_cast<float>(mant), -24);
      return sign ? -v : v;
    }
  } else if (exp == 31) {
    x = sign | 0x7F800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t float_to_bfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float bfloat16_to_float(uint16_t b) {
  uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint8_t float_to_f8(DType t, float f, bool saturate) {
  const MiniFloat m = minifloat(t);
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return m.fnuz ? 0x80 : static_cast<uint8_t>(sign | nan_code(m));
  double a = std::fabs(static_cast<double>(f));
  double r = std::isinf(f) ? INFINITY : round_to_grid(a, m);
  if (r > m.max) {
    if (saturate) return static_cast<uint8_t>(sign | encode_magnitude(m.max, m));
    if (m.has_inf) return static_cast<uint8_t>(sign | 0x7C);
    return m.fnuz ? 0x80 : static_cast<uint8_t>(sign | 0x7F);
  }
  uint8_t code = encode_magnitude(r, m);
  if (code == 0 && m.fnuz) return 0;  // FNUZ has no negative zero
  return static_cast<uint8_t>(sign | code);
}

float f8_to_float(DType t, uint8_t v) {
  const MiniFloat m = minifloat(t);
  const bool neg = (v & 0x80) != 0;
  const uint32_t mag = v & 0x7Fu;
  if (m.fnuz) {
    if (v == 0x80) return NAN;
  } else if (m.has_inf) {
    if (mag == 0x7C) return neg ? -INFINITY : INFINITY;
    if (mag > 0x7C) return NAN;
  } else if (mag == 0x7F) {
    return NAN;
  }
  uint32_t e = mag >> m.mbits;
  uint32_t mant = mag & ((1u << m.mbits) - 1);
  double r;
  if (e == 0) {
    r = std::ldexp(static_cast<double>(mant), 1 - m.bias - m.mbits);
  } else {
    r = std::ldexp(1.0 + static_cast<double>(mant) / (1 << m.mbits), static_cast<int>(e) - m.bias);
  }
  return static_cast<float>(neg ? -r : r);
}

uint8_t float_to_f4e2m1(float f) {
  const MiniFloat m{2, 1, 1, false, false, 6.0f};
  const uint8_t sign = std::signbit(f) ? 0x8 : 0;
  if (std::isnan(f)) return 0x8;  // no NaN in FLOAT4E2M1: ONNX's reference yields 0x8 (-0)
  double a = std::fabs(static_cast<double>(f));
  double r = std::isinf(f) ? m.max : std::min<double>(round_to_grid(a, m), m.max);
  return static_cast<uint8_t>(sign | encode_magnitude(r, m));
}

float f4e2m1_to_float(uint8_t v) {
  static const float table[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  float r = table[v & 0x7];
  return (v & 0x8) ? -r : r;
}

uint8_t float_to_f8e8m0(float f, bool saturate) {
  // Works on the float32 bits as ONNX's reference does: the sign is dropped, the exponent field
  // is the code, and any mantissa bit rounds up (Cast's default round_mode "up").
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t exp = (x >> 23) & 0xFFu;
  const uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return (mant != 0 || !saturate) ? 0xFF : 0xFE;
  uint32_t code = exp + (mant != 0 ? 1u : 0u);
  if (code > 0xFE) return saturate ? 0xFE : 0xFF;
  return static_cast<uint8_t>(code);
}

float f8e8m0_to_float(uint8_t v) {
  if (v == 0xFF) return NAN;
  return static_cast<float>(std::ldexp(1.0, static_cast<int>(v) - 127));
}

}  // namespace kpt
