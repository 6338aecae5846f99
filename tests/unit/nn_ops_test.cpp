// nn kernels: rounding and bad-input behaviour that the conformance cases do not pin down.
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

Tensor i64(const Dims& dims, const std::vector<int64_t>& v) {
  Tensor t(DType::I64, dims);
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

// QuantizeLinear rounds halves to even and saturates to the zero point's type.
TEST(NnOps, QuantizeLinearRoundsHalfToEvenAndSaturates) {
  ModelBuilder b(21);
  b.input("x", DType::F32, DeclDims{6});
  b.initializer("s", DType::F32, {}, testing::bytes_of(std::vector<float>{1.0f}));
  b.initializer("z", DType::I8, {}, testing::bytes_of(std::vector<int8_t>{1}));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"y"});
  b.output("y", DType::I8, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const auto out = s.run_tensors({{"x", f32({6}, {0.5f, 1.5f, 2.5f, -0.5f, 500.0f, -500.0f})}});
  const std::vector<int8_t> want = {1, 3, 3, 1, 127, -128};
  ASSERT_EQ(out[0].numel(), 6);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[0].data<int8_t>()[i], want[i]) << i;
}

TEST(NnOps, RotaryEmbeddingRejectsPositionOutsideCache) {
  ModelBuilder b(23);
  b.input("x", DType::F32, DeclDims{1, 1, 1, 4});
  b.input("cos", DType::F32, DeclDims{2, 2});
  b.input("sin", DType::F32, DeclDims{2, 2});
  b.input("pos", DType::I64, DeclDims{1, 1});
  b.node("RotaryEmbedding", {"x", "cos", "sin", "pos"}, {"y"});
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const Tensor cache = f32({2, 2}, {1, 1, 1, 1});
  EXPECT_THROW(s.run_tensors({{"x", f32({1, 1, 1, 4}, {1, 2, 3, 4})},
                              {"cos", cache},
                              {"sin", cache},
                              {"pos", i64({1, 1}, {5})}}),
               Error);
}

TEST(NnOps, TensorScatterLinearRejectsWritePastTheEnd) {
  ModelBuilder b(24);
  b.input("cache", DType::F32, DeclDims{1, 2, 1});
  b.input("upd", DType::F32, DeclDims{1, 1, 1});
  b.input("idx", DType::I64, DeclDims{1});
  b.node("TensorScatter", {"cache", "upd", "idx"}, {"y"});
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  EXPECT_THROW(s.run_tensors({{"cache", f32({1, 2, 1}, {0, 0})},
                              {"upd", f32({1, 1, 1}, {7})},
                              {"idx", i64({1}, {2})}}),
               Error);
}

}  // namespace
}  // namespace kpt
