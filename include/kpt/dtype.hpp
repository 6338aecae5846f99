#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kpt {

// Element types. Values are the ONNX TensorProto.DataType codes so that conversion from the
// file format is a cast.
enum class DType : int32_t {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  String = 8,
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BF16 = 16,
  F8E4M3FN = 17,
  F8E4M3FNUZ = 18,
  F8E5M2 = 19,
  F8E5M2FNUZ = 20,
  U4 = 21,
  I4 = 22,
  F4E2M1 = 23,
  F8E8M0 = 24,
  U2 = 25,
  I2 = 26,
};

// Bytes per element in memory. Sub-byte types (int4, uint4, fp4, int2, uint2) are held one
// element per byte in memory so kernels index them like any other type; they are packed only
// in files (see packed_bits).
size_t dtype_size(DType t);
// Bits per element in ONNX files (4 or 2 for the packed types, else 8 * dtype_size).
int packed_bits(DType t);
std::string_view dtype_name(DType t);
// Parses names as dtype_name prints them and common aliases ("float32", "int64", ...).
DType dtype_from_name(std::string_view name);
bool is_valid_dtype(int32_t code);

bool is_float(DType t);    // every floating type, fp8/fp4 included
bool is_integer(DType t);  // signed and unsigned integers, sub-byte ones included
bool is_signed_integer(DType t);
bool is_unsigned_integer(DType t);

// Scalar conversions for the storage-only float types. Rounding is to nearest, ties to even.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
uint16_t float_to_bfloat16(float f);
float bfloat16_to_float(uint16_t b);
// fp8 per the ONNX specification: with saturate=true, values beyond the largest finite
// magnitude (and infinities for the types without inf) become the largest finite value;
// with saturate=false they become inf (E5M2) or NaN (types without inf).
uint8_t float_to_f8(DType t, float f, bool saturate);
float f8_to_float(DType t, uint8_t v);
uint8_t float_to_f4e2m1(float f);  // saturating, as ONNX defines FLOAT4E2M1
float f4e2m1_to_float(uint8_t v);
// Rounds up (Cast's default round_mode "up"); the Cast kernel implements the other modes.
uint8_t float_to_f8e8m0(float f, bool saturate);
float f8e8m0_to_float(uint8_t v);

// Value type for a dtype in C++; storage-only types map to their bit containers.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

}  // namespace kpt
