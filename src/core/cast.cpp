#include "core/cast.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "kpt/error.hpp"

namespace kpt {

namespace {

int64_t float_to_int64(double v) {
  if (std::isnan(v) || v >= 9.2233720368547758e18 || v < -9.2233720368547758e18) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(v);
}

template <typename T>
void store_int(void* dst, int64_t v) {
  T x = static_cast<T>(v);
  std::memcpy(dst, &x, sizeof(T));
}

// double -> float rounding to odd: a later rounding to a narrower type (half) then gives the
// same result as rounding v directly, as numpy's float64 -> float16 does.
float to_float_round_to_odd(double v) {
  float f = static_cast<float>(v);
  if (!std::isfinite(v) || static_cast<double>(f) == v || std::isinf(f)) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits |= 1u;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Writes double v into one element of type `to`.
void store(DType to, void* dst, double v, bool from_float, bool saturate, int64_t iv) {
  auto* b = static_cast<uint8_t*>(dst);
  const int64_t i = from_float ? float_to_int64(v) : iv;
  switch (to) {
    case DType::F32: {
      // Integers convert directly: going through double would round twice.
      float f = (from_float || v >= 9.2233720368547758e18) ? static_cast<float>(v)
                                                           : static_cast<float>(iv);
      std::memcpy(dst, &f, 4);
      return;
    }
    case DType::F64:
      std::memcpy(dst, &v, 8);
      return;
    case DType::F16: {
      uint16_t h = float_to_half(to_float_round_to_odd(v));
      std::memcpy(dst, &h, 2);
      return;
    }
    case DType::BF16: {
      uint16_t h = float_to_bfloat16(static_cast<float>(v));
      std::memcpy(dst, &h, 2);
      return;
    }
    case DType::F8E4M3FN:
    case DType::F8E4M3FNUZ:
    case DType::F8E5M2:
    case DType::F8E5M2FNUZ:
      *b = float_to_f8(to, static_cast<float>(v), saturate);
      return;
    case DType::F4E2M1:
      *b = float_to_f4e2m1(static_cast<float>(v));
      return;
    case DType::F8E8M0:
      *b = float_to_f8e8m0(static_cast<float>(v), saturate);
      return;
    case DType::Bool:
      *b = from_float ? (v != 0.0 ? 1 : 0) : (iv != 0 ? 1 : 0);
      return;
    case DType::I8:
      store_int<int8_t>(dst, i);
      return;
    case DType::U8:
      store_int<uint8_t>(dst, i);
      return;
    case DType::I16:
      store_int<int16_t>(dst, i);
      return;
    case DType::U16:
      store_int<uint16_t>(dst, i);
      return;
    case DType::I32:
      store_int<int32_t>(dst, i);
      return;
    case DType::U32:
      store_int<uint32_t>(dst, i);
      return;
    case DType::I64:
      store_int<int64_t>(dst, i);
      return;
    case DType::U64:
      if (from_float && v >= 9.2233720368547758e18 && v < 1.8446744073709552e19) {
        store_int<uint64_t>(dst, static_cast<int64_t>(static_cast<uint64_t>(v)));
      } else {
        store_int<uint64_t>(dst, i);
      }
      return;
    case DType::I4: {
      // Sub-byte integers wrap into their range (two's complement in 4 bits).
      int8_t x = static_cast<int8_t>(static_cast<int8_t>((i & 0xF) << 4) >> 4);
      *b = static_cast<uint8_t>(x);
      return;
    }
    case DType::U4:
      *b = static_cast<uint8_t>(i & 0xF);
      return;
    case DType::I2: {
      int8_t x = static_cast<int8_t>(static_cast<int8_t>((i & 0x3) << 6) >> 6);
      *b = static_cast<uint8_t>(x);
      return;
    }
    case DType::U2:
      *b = static_cast<uint8_t>(i & 0x3);
      return;
    default:
      fail("cannot cast to " + std::string(dtype_name(to)));
  }
}

// The value of v after rounding to the float type t (for shortest round-trip printing).
double requantize(double v, DType t) {
  const auto f = static_cast<float>(v);
  switch (t) {
    case DType::F64:
      return v;
    case DType::F16:
      return half_to_float(float_to_half(f));
    case DType::BF16:
      return bfloat16_to_float(float_to_bfloat16(f));
    case DType::F8E4M3FN:
    case DType::F8E4M3FNUZ:
    case DType::F8E5M2:
    case DType::F8E5M2FNUZ:
      return f8_to_float(t, float_to_f8(t, f, true));
    case DType::F4E2M1:
      return f4e2m1_to_float(float_to_f4e2m1(f));
    case DType::F8E8M0:
      return f8e8m0_to_float(float_to_f8e8m0(f, true));
    default:
      return f;
  }
}

// Formats a float as numpy's str() does: the shortest digits that read back to the same value
// of the source type, positional for 1e-4 <= |v| < 1e16 (always with a fractional part),
// scientific otherwise with an exponent of at least two digits.
std::string format_float(double v, DType src) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const bool neg = std::signbit(v);
  const double a = std::fabs(v);
  if (a == 0) return neg ? "-0.0" : "0.0";
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, a);
    if (requantize(std::strtod(buf, nullptr), src) == a) break;
  }
  // buf is "d.ddde+XX": split into significant digits and the decimal exponent.
  std::string text(buf);
  const size_t epos = text.find('e');
  std::string digits;
  for (size_t i = 0; i < epos; ++i) {
    if (text[i] != '.') digits += text[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int exp10 = std::atoi(text.c_str() + epos + 1);
  std::string out = neg ? "-" : "";
  if (a >= 1e-4 && a < 1e16) {
    if (exp10 >= 0) {
      const auto int_len = static_cast<size_t>(exp10) + 1;
      std::string int_part = digits.substr(0, std::min(int_len, digits.size()));
      int_part.resize(int_len, '0');
      const std::string frac = digits.size() > int_len ? digits.substr(int_len) : "0";
      out += int_part + "." + frac;
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  const int e = std::abs(exp10);
  out += std::string(exp10 < 0 ? "e-" : "e+") + (e < 10 ? "0" : "") + std::to_string(e);
  return out;
}

std::string number_to_string(const Tensor& t, int64_t k) {
  if (t.dtype() == DType::Bool) return t.get_i64(k) ? "True" : "False";
  if (is_integer(t.dtype())) {
    if (t.dtype() == DType::U64) return std::to_string(t.data<uint64_t>()[k]);
    return std::to_string(t.get_i64(k));
  }
  return format_float(t.get_f64(k), t.dtype());
}

double parse_number(const std::string& s, DType to) {
  std::string low;
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (low == "nan" || low == "+nan" || low == "-nan") return NAN;
  if (low == "inf" || low == "+inf" || low == "infinity" || low == "+infinity") return INFINITY;
  if (low == "-inf" || low == "-infinity") return -INFINITY;
  if (low == "true") return 1.0;
  if (low == "false") return 0.0;
  char* end = nullptr;
  double v = std::strtod(low.c_str(), &end);
  if (end == low.c_str() || *end != '\0') {
    fail("cannot cast string '" + s + "' to " + std::string(dtype_name(to)));
  }
  return v;
}

}  // namespace

Tensor cast_tensor(const Tensor& t, DType to, bool saturate) {
  Tensor out(to, t.dims());
  const int64_t n = t.numel();
  if (t.dtype() == to) return t.clone();
  if (to == DType::String) {
    auto& dst = out.strings();
    for (int64_t k = 0; k < n; ++k) dst[static_cast<size_t>(k)] = number_to_string(t, k);
    return out;
  }
  const size_t esize = dtype_size(to);
  auto* dst = static_cast<uint8_t*>(out.raw());
  if (t.dtype() == DType::String) {
    const auto& src = t.strings();
    for (int64_t k = 0; k < n; ++k) {
      const std::string& s = src[static_cast<size_t>(k)];
      double v = parse_number(s, to);
      bool from_float = is_float(to) || s.find_first_of(".eEnN") != std::string::npos;
      int64_t iv = from_float ? 0 : std::strtoll(s.c_str(), nullptr, 10);
      store(to, dst + static_cast<size_t>(k) * esize, v, from_float, saturate, iv);
    }
    return out;
  }
  const bool from_float = is_float(t.dtype());
  for (int64_t k = 0; k < n; ++k) {
    double v = from_float ? t.get_f64(k) : 0.0;
    int64_t iv = from_float ? 0 : t.get_i64(k);
    if (!from_float)
      v = t.dtype() == DType::U64 ? static_cast<double>(t.data<uint64_t>()[k])
                                  : static_cast<double>(iv);
    store(to, dst + static_cast<size_t>(k) * esize, v, from_float, saturate, iv);
  }
  return out;
}

}  // namespace kpt
