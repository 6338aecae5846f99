// Vision kernels: the details conformance data does not pin down (column-major MaxPool
// indices, GroupNormalization's per-opset scale layout) and bad input that must end in an
// Error rather than a crash or a huge allocation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

using testing::DeclDims;
using testing::ModelBuilder;

Tensor f32(const Dims& dims, const std::vector<float>& v) {
  Tensor t(DType::F32, dims);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

TEST(VisionOps, MaxPoolColumnMajorIndices) {
  ModelBuilder b(12);
  b.input("x", DType::F32, DeclDims{1, 1, 2, 3});
  auto& n = b.node("MaxPool", {"x"}, {"y", "i"});
  testing::add_ints_attr(n, "kernel_shape", {2, 2});
  testing::add_int_attr(n, "storage_order", 1);
  b.output("y", DType::F32, std::nullopt);
  b.output("i", DType::I64, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  // Maxima at (1,1) = 5 and (0,2) = 9; column-major offsets h + w*H are 3 and 4.
  const auto out = s.run_tensors({{"x", f32({1, 1, 2, 3}, {1, 2, 9, 4, 5, 3})}});
  ASSERT_EQ(out[1].numel(), 2);
  EXPECT_EQ(out[0].data<float>()[0], 5.0f);
  EXPECT_EQ(out[0].data<float>()[1], 9.0f);
  EXPECT_EQ(out[1].data<int64_t>()[0], 3);
  EXPECT_EQ(out[1].data<int64_t>()[1], 4);
}

// Opset 18 takes one scale per group, opset 21 one per channel.
std::vector<float> group_norm(int opset, const std::vector<float>& scale) {
  ModelBuilder b(opset);
  b.input("x", DType::F32, DeclDims{1, 4, 1});
  b.input("s", DType::F32, DeclDims{static_cast<int64_t>(scale.size())});
  b.input("b", DType::F32, DeclDims{static_cast<int64_t>(scale.size())});
  auto& n = b.node("GroupNormalization", {"x", "s", "b"}, {"y"});
  testing::add_int_attr(n, "num_groups", 2);
  testing::add_float_attr(n, "epsilon", 0.0f);
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const Dims sd = {static_cast<int64_t>(scale.size())};
  const auto out = s.run_tensors({{"x", f32({1, 4, 1}, {0, 2, 5, 7})},
                                  {"s", f32(sd, scale)},
                                  {"b", f32(sd, std::vector<float>(scale.size(), 0))}});
  return {out[0].data<float>(), out[0].data<float>() + 4};
}

TEST(VisionOps, GroupNormScaleLayoutFollowsOpset) {
  EXPECT_EQ(group_norm(18, {2, 3}), (std::vector<float>{-2, 2, -3, 3}));
  EXPECT_EQ(group_norm(21, {1, 2, 3, 4}), (std::vector<float>{-1, 2, -3, 4}));
}

TEST(VisionOps, ConvChannelMismatchFails) {
  ModelBuilder b(11);
  b.input("x", DType::F32, DeclDims{1, 3, 4, 4});
  b.input("w", DType::F32, DeclDims{2, 2, 3, 3});
  b.node("Conv", {"x", "w"}, {"y"});
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  try {
    s.run_tensors(
        {{"x", Tensor(DType::F32, {1, 3, 4, 4})}, {"w", Tensor(DType::F32, {2, 2, 3, 3})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input channels"), std::string::npos) << e.what();
  }
}

TEST(VisionOps, ResizeToAbsurdSizeFails) {
  ModelBuilder b(13);
  b.input("x", DType::F32, DeclDims{1, 1, 2, 2});
  b.input("sizes", DType::I64, DeclDims{4});
  b.node("Resize", {"x", "", "", "sizes"}, {"y"});
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  Tensor sizes(DType::I64, {4});
  const int64_t v[] = {1, 1, int64_t{1} << 30, int64_t{1} << 30};
  for (int i = 0; i < 4; ++i) sizes.data<int64_t>()[i] = v[i];
  EXPECT_THROW(s.run_tensors({{"x", Tensor(DType::F32, {1, 1, 2, 2})}, {"sizes", sizes}}), Error);
}

}  // namespace
}  // namespace kpt
