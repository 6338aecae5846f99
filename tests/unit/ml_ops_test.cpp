// ai.onnx.ml kernels: cases the conformance data does not cover (NaN keys, LabelEncoder
// opset 1, tree aggregation) and bad input that must end in an Error naming the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

using testing::DeclDims;
using testing::ModelBuilder;

constexpr const char* kMl = "ai.onnx.ml";

void add_strings_attr(onnx::NodeProto& n, const std::string& name,
                      const std::vector<std::string>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRINGS);
  for (const auto& s : v) a->add_strings(s);
}

void add_floats_attr(onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float f : v) a->add_floats(f);
}

template <typename T>
void add_raw_tensor_attr(onnx::NodeProto& n, const std::string& name, DType dt,
                         const std::vector<T>& v) {
  testing::add_tensor_attr(
      n, name,
      testing::raw_tensor(name, dt, {static_cast<int64_t>(v.size())}, testing::bytes_of(v)));
}

template <typename T>
Tensor make(DType dt, const Dims& dims, const std::vector<T>& v) {
  Tensor t(dt, dims);
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}

std::string error_of(const Session& s, const std::string& name, const Tensor& x) {
  try {
    s.run_tensors({{name, x}});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MlOps, LabelEncoderFloatKeysMatchNaN) {
  ModelBuilder b(17);
  b.opset(kMl, 2);
  b.input("x", DType::F32, DeclDims{3});
  auto& n = b.node("LabelEncoder", {"x"}, {"y"}, "", kMl);
  add_floats_attr(n, "keys_floats", {std::numeric_limits<float>::quiet_NaN(), 1.5f});
  add_strings_attr(n, "values_strings", {"nan", "x"});
  b.output("y", DType::String, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const auto out = s.run_tensors(
      {{"x", make<float>(DType::F32, {3}, {std::numeric_limits<float>::quiet_NaN(), 1.5f, 2})}});
  EXPECT_EQ(out[0].strings(), (std::vector<std::string>{"nan", "x", "_Unused"}));
}

TEST(MlOps, LabelEncoderOpset1MapsIndicesToClasses) {
  ModelBuilder b(17);
  b.opset(kMl, 1);
  b.input("x", DType::I64, DeclDims{2});
  auto& n = b.node("LabelEncoder", {"x"}, {"y"}, "", kMl);
  add_strings_attr(n, "classes_strings", {"a", "b"});
  b.output("y", DType::String, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const auto out = s.run_tensors({{"x", make<int64_t>(DType::I64, {2}, {1, 5})}});
  EXPECT_EQ(out[0].strings(), (std::vector<std::string>{"b", "_Unused"}));
}

TEST(MlOps, LabelEncoderKeyValueCountMismatchFails) {
  ModelBuilder b(17);
  b.opset(kMl, 2);
  b.input("x", DType::I64, DeclDims{1});
  auto& n = b.node("LabelEncoder", {"x"}, {"y"}, "", kMl);
  testing::add_ints_attr(n, "keys_int64s", {1, 2});
  add_floats_attr(n, "values_floats", {1.0f});
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const std::string msg = error_of(s, "x", make<int64_t>(DType::I64, {1}, {1}));
  EXPECT_NE(msg.find("2 keys but 1 values"), std::string::npos) << msg;
}

TEST(MlOps, BinarizerOnIntegers) {
  ModelBuilder b(17);
  b.opset(kMl, 1);
  b.input("x", DType::I64, DeclDims{3});
  auto& n = b.node("Binarizer", {"x"}, {"y"}, "", kMl);
  testing::add_float_attr(n, "threshold", 1.0f);
  b.output("y", DType::I64, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const auto out = s.run_tensors({{"x", make<int64_t>(DType::I64, {3}, {0, 1, 2})}});
  EXPECT_EQ(std::vector<int64_t>(out[0].data<int64_t>(), out[0].data<int64_t>() + 3),
            (std::vector<int64_t>{0, 0, 1}));
}

TEST(MlOps, ArrayFeatureExtractorIndexOutOfRangeFails) {
  ModelBuilder b(17);
  b.opset(kMl, 1);
  b.input("x", DType::F32, DeclDims{2, 2});
  b.initializer("i", DType::I64, {1}, testing::bytes_of(std::vector<int64_t>{2}));
  b.node("ArrayFeatureExtractor", {"x", "i"}, {"y"}, "", kMl);
  b.output("y", DType::F32, std::nullopt);
  const Session s = Session::from_bytes(b.bytes());
  const std::string msg = error_of(s, "x", Tensor(DType::F32, {2, 2}));
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
}

// Two stumps on feature 0: tree 0 sends x <= 0.5 to (target 0, 2) else (target 1, 4); tree 1
// sends x < 10 to (target 0, 4) else (target 1, 8).
Session stumps(int64_t aggregate, int64_t feature = 0) {
  ModelBuilder b(17);
  b.opset(kMl, 5);
  b.input("x", DType::F32, DeclDims{2, 1});
  auto& n = b.node("TreeEnsemble", {"x"}, {"y"}, "", kMl);
  testing::add_int_attr(n, "aggregate_function", aggregate);
  testing::add_int_attr(n, "n_targets", 2);
  testing::add_ints_attr(n, "tree_roots", {0, 1});
  testing::add_ints_attr(n, "nodes_featureids", {feature, feature});
  add_raw_tensor_attr<uint8_t>(n, "nodes_modes", DType::U8, {0, 1});
  add_raw_tensor_attr<float>(n, "nodes_splits", DType::F32, {0.5f, 10.0f});
  testing::add_ints_attr(n, "nodes_truenodeids", {0, 2});
  testing::add_ints_attr(n, "nodes_trueleafs", {1, 1});
  testing::add_ints_attr(n, "nodes_falsenodeids", {1, 3});
  testing::add_ints_attr(n, "nodes_falseleafs", {1, 1});
  testing::add_ints_attr(n, "leaf_targetids", {0, 1, 0, 1});
  add_raw_tensor_attr<float>(n, "leaf_weights", DType::F32, {2, 4, 4, 8});
  b.output("y", DType::F32, std::nullopt);
  return Session::from_bytes(b.bytes());
}

std::vector<float> run_stumps(int64_t aggregate) {
  const auto out = stumps(aggregate).run_tensors({{"x", make<float>(DType::F32, {2, 1}, {0, 1})}});
  return {out[0].data<float>(), out[0].data<float>() + 4};
}

TEST(MlOps, TreeEnsembleAggregates) {
  EXPECT_EQ(run_stumps(1), (std::vector<float>{6, 0, 4, 4}));  // SUM
  EXPECT_EQ(run_stumps(0), (std::vector<float>{3, 0, 2, 2}));  // AVERAGE
}

TEST(MlOps, TreeEnsembleFeatureIdOutOfRangeFails) {
  const std::string msg = error_of(stumps(1, 3), "x", Tensor(DType::F32, {2, 1}));
  EXPECT_NE(msg.find("features"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kpt
