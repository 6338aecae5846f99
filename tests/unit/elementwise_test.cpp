// Conversion details that ONNX's Cast pins down and that are easy to get subtly wrong:
// numpy's float printing, FLOAT8E8M0 rounding, FLOAT4E2M1 NaN, sub-byte integer wrapping.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/cast.hpp"
#include "kpt/dtype.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "kpt/tensor.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

Tensor f32_tensor(const std::vector<float>& v) {
  Tensor t(DType::F32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

TEST(Cast, FloatToStringMatchesNumpy) {
  const Tensor s = cast_tensor(
      f32_tensor({0.1f, 1e10f, 1e16f, 1e-4f, 1.5f, -0.0f, NAN, -INFINITY, 123456789.0f}),
      DType::String);
  const std::vector<std::string> expected = {"0.1",  "10000000000.0", "1e+16", "1e-04",      "1.5",
                                             "-0.0", "nan",           "-inf",  "123456790.0"};
  EXPECT_EQ(s.strings(), expected);
}

TEST(Cast, StringToNumberAcceptsOnnxSpecialValues) {
  Tensor s(DType::String, {4});
  s.strings() = {"+INF", "-inf", "NaN", "1E3"};
  const Tensor f = cast_tensor(s, DType::F32);
  EXPECT_TRUE(std::isinf(f.data<float>()[0]) && f.data<float>()[0] > 0);
  EXPECT_TRUE(std::isinf(f.data<float>()[1]) && f.data<float>()[1] < 0);
  EXPECT_TRUE(std::isnan(f.data<float>()[2]));
  EXPECT_EQ(f.data<float>()[3], 1000.0f);
  s.strings()[0] = "12abc";
  EXPECT_THROW(cast_tensor(s, DType::F32), Error);
}

TEST(Cast, DoubleToHalfRoundsOnce) {
  // Just above the tie between 1 and 1 + 2^-10: rounding to float first would land on the tie.
  Tensor d(DType::F64, {1});
  d.data<double>()[0] = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(cast_tensor(d, DType::F16).data<uint16_t>()[0], 0x3C01);
}

TEST(Cast, E8M0RoundsUpByDefault) {
  EXPECT_EQ(float_to_f8e8m0(0.124f, true), 124);  // 2^-3 is the next power of two up
  EXPECT_EQ(float_to_f8e8m0(1.1f, true), 128);
  EXPECT_EQ(float_to_f8e8m0(0.0f, true), 0);
  EXPECT_EQ(float_to_f8e8m0(INFINITY, true), 0xFE);
  EXPECT_EQ(float_to_f8e8m0(INFINITY, false), 0xFF);
}

TEST(Cast, SubByteIntegersWrapAndFloat4NaN) {
  const Tensor i4 = cast_tensor(f32_tensor({-9.0f, 8.0f, 7.0f}), DType::I4);
  EXPECT_EQ(static_cast<int8_t>(i4.data<uint8_t>()[0]), 7);
  EXPECT_EQ(static_cast<int8_t>(i4.data<uint8_t>()[1]), -8);
  EXPECT_EQ(static_cast<int8_t>(i4.data<uint8_t>()[2]), 7);
  EXPECT_EQ(float_to_f4e2m1(NAN), 0x8);
}

// Runs one node of the default domain on i32 inputs a and b (named like the node's inputs).
Tensor run_i32(const std::string& op, int opset, const std::vector<int32_t>& a,
               const std::vector<int32_t>& b, const std::string& int_attr = "",
               int64_t attr_value = 0) {
  testing::ModelBuilder m(opset);
  const auto n = static_cast<int64_t>(a.size());
  m.input("a", DType::I32, testing::DeclDims{n});
  m.input("b", DType::I32, testing::DeclDims{n});
  m.output("y", DType::I32, testing::DeclDims{n});
  auto& node = m.node(op, {"a", "b"}, {"y"});
  if (!int_attr.empty()) testing::add_int_attr(node, int_attr, attr_value);
  Session s = Session::from_bytes(m.bytes());
  Tensor ta(DType::I32, {n});
  Tensor tb(DType::I32, {n});
  for (int64_t i = 0; i < n; ++i) {
    ta.data<int32_t>()[i] = a[static_cast<size_t>(i)];
    tb.data<int32_t>()[i] = b[static_cast<size_t>(i)];
  }
  return s.run_tensors({{"a", ta}, {"b", tb}})[0];
}

std::vector<int32_t> values(const Tensor& t) {
  return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
}

TEST(Mod, IntegerSignFollowsDivisorUnlessFmod) {
  EXPECT_EQ(values(run_i32("Mod", 13, {-7, 7, -7, 7}, {3, -3, -3, 3})),
            (std::vector<int32_t>{2, -2, -1, 1}));
  EXPECT_EQ(values(run_i32("Mod", 13, {-7, 7, -7, 7}, {3, -3, -3, 3}, "fmod", 1)),
            (std::vector<int32_t>{-1, 1, -1, 1}));
  EXPECT_THROW(run_i32("Mod", 13, {1}, {0}), Error);
}

TEST(Div, IntegerDivisionTruncatesAndRejectsZero) {
  EXPECT_EQ(values(run_i32("Div", 14, {-7, 7, INT32_MIN}, {2, -2, -1})),
            (std::vector<int32_t>{-3, -3, INT32_MIN}));
  EXPECT_THROW(run_i32("Div", 14, {1}, {0}), Error);
}

TEST(Pow, IntegerPowerIsExact) {
  EXPECT_EQ(values(run_i32("Pow", 15, {3, -2, 7}, {19, 3, 0})),
            (std::vector<int32_t>{1162261467, -8, 1}));
}

}  // namespace
}  // namespace kpt
