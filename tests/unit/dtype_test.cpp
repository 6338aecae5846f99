#include "kpt/dtype.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace kpt {
namespace {

TEST(DType, HalfRoundTripsAndRoundsToNearestEven) {
  EXPECT_EQ(half_to_float(float_to_half(1.0f)), 1.0f);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(1e6f), 0x7C00);  // overflow to inf
  // 1 + 2^-11 lies halfway between 1 and the next half; ties go to the even mantissa (1).
  EXPECT_EQ(half_to_float(float_to_half(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(half_to_float(float_to_half(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
}

TEST(DType, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.0f)), 1.0f);
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(NAN))));
}

TEST(DType, Float8SaturatesAsOnnxDefines) {
  EXPECT_EQ(f8_to_float(DType::F8E4M3FN, float_to_f8(DType::F8E4M3FN, 1000.0f, true)), 448.0f);
  EXPECT_TRUE(
      std::isnan(f8_to_float(DType::F8E4M3FN, float_to_f8(DType::F8E4M3FN, 1000.0f, false))));
  EXPECT_EQ(f8_to_float(DType::F8E5M2, float_to_f8(DType::F8E5M2, 1e6f, true)), 57344.0f);
  EXPECT_TRUE(std::isinf(f8_to_float(DType::F8E5M2, float_to_f8(DType::F8E5M2, 1e6f, false))));
  EXPECT_EQ(f8_to_float(DType::F8E4M3FNUZ, float_to_f8(DType::F8E4M3FNUZ, 300.0f, true)), 240.0f);
  EXPECT_EQ(float_to_f8(DType::F8E4M3FNUZ, -0.0f, true), 0);
  for (DType t : {DType::F8E4M3FN, DType::F8E4M3FNUZ, DType::F8E5M2, DType::F8E5M2FNUZ}) {
    for (int c = 0; c < 256; ++c) {
      float f = f8_to_float(t, static_cast<uint8_t>(c));
      if (std::isnan(f)) continue;
      EXPECT_EQ(f8_to_float(t, float_to_f8(t, f, false)), f) << dtype_name(t) << " code " << c;
    }
  }
}

TEST(DType, Float4AndE8M0) {
  EXPECT_EQ(f4e2m1_to_float(float_to_f4e2m1(2.6f)), 3.0f);
  EXPECT_EQ(f4e2m1_to_float(float_to_f4e2m1(100.0f)), 6.0f);
  EXPECT_EQ(f4e2m1_to_float(float_to_f4e2m1(-0.3f)), -0.5f);
  EXPECT_EQ(f8e8m0_to_float(float_to_f8e8m0(4.0f, true)), 4.0f);
}

TEST(DType, NamesRoundTrip) {
  EXPECT_EQ(dtype_from_name("float32"), DType::F32);
  EXPECT_EQ(dtype_from_name(dtype_name(DType::BF16)), DType::BF16);
  EXPECT_THROW(dtype_from_name("nope"), std::exception);
}

}  // namespace
}  // namespace kpt
