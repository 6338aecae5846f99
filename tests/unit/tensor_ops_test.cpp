// Index arithmetic of the shape/indexing kernels that conformance covers thinly: Slice clamping
// with negative steps, Pad cropping before reflecting, Unique with NaN, uneven Split, and the
// failure raised for an out-of-range index.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/tensor.hpp"
#include "ops/run_node.hpp"

namespace kpt {
namespace {

Tensor i64(const std::vector<int64_t>& v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor f32(const std::vector<float>& v, Dims dims) {
  Tensor t(DType::F32, std::move(dims));
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

ir::Node make_node(const std::string& op, int opset, size_t n_inputs, size_t n_outputs) {
  ir::Node n;
  n.op_type = op;
  n.opset = opset;
  for (size_t i = 0; i < n_inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < n_outputs; ++i) n.outputs.push_back("out" + std::to_string(i));
  return n;
}

void set_attr(ir::Node& n, const std::string& name, const std::string& s) {
  n.attrs[name] = ir::Attribute::of_string(name, s);
}

void set_attr(ir::Node& n, const std::string& name, int64_t i) {
  n.attrs[name] = ir::Attribute::of_int(name, i);
}

std::vector<Value> run(const ir::Node& node, const std::vector<Tensor>& inputs) {
  std::vector<Value> values;
  for (const auto& t : inputs) values.push_back(Value::of(t));
  std::vector<const Value*> ptrs;
  for (const auto& v : values) ptrs.push_back(&v);
  return ops::run_node(node, ptrs, nullptr);
}

TEST(TensorOps, SliceNegativeStepClampsStartAndEnd) {
  const ir::Node n = make_node("Slice", 13, 5, 1);
  const Tensor x = f32({0, 1, 2, 3, 4, 5}, {6});
  // x[100:-1000:-2] in numpy: starts clamp to the last element, ends to "before the first".
  const auto out = run(n, {x, i64({100}), i64({-1000}), i64({0}), i64({-2})});
  EXPECT_EQ(floats(out[0].tensor), (std::vector<float>{5, 3, 1}));
}

TEST(TensorOps, PadCropsBeforeReflecting) {
  ir::Node n = make_node("Pad", 13, 2, 1);
  set_attr(n, "mode", std::string("reflect"));
  const Tensor x = f32({1, 2, 3, 4, 5}, {5});
  // Crop one element at the end, then reflect three at the start of [1, 2, 3, 4].
  const auto out = run(n, {x, i64({3, -1})});
  EXPECT_EQ(floats(out[0].tensor), (std::vector<float>{4, 3, 2, 1, 2, 3, 4}));
}

TEST(TensorOps, UniqueSortsNaNLastAndGroupsIt) {
  const ir::Node n = make_node("Unique", 11, 1, 4);
  const Tensor x = f32({2, NAN, 1, NAN, 2}, {5});
  const auto out = run(n, {x});
  const auto y = floats(out[0].tensor);
  ASSERT_EQ(y.size(), 3u);
  EXPECT_EQ(y[0], 1);
  EXPECT_EQ(y[1], 2);
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(out[3].tensor.to_i64_vector(), (std::vector<int64_t>{1, 2, 2}));
}

TEST(TensorOps, SplitNumOutputsLeavesShortLastChunk) {
  ir::Node n = make_node("Split", 18, 1, 3);
  set_attr(n, "num_outputs", int64_t{3});
  const auto out = run(n, {f32({0, 1, 2, 3, 4, 5, 6}, {7})});
  EXPECT_EQ(out[0].tensor.dims(), (Dims{3}));
  EXPECT_EQ(out[1].tensor.dims(), (Dims{3}));
  EXPECT_EQ(out[2].tensor.dims(), (Dims{1}));
}

TEST(TensorOps, GatherOutOfRangeIndexFails) {
  const ir::Node n = make_node("Gather", 13, 2, 1);
  EXPECT_THROW(run(n, {f32({1, 2, 3}, {3}), i64({3})}), Error);
  const auto out = run(n, {f32({1, 2, 3}, {3}), i64({-3})});
  EXPECT_EQ(floats(out[0].tensor), (std::vector<float>{1}));
}

}  // namespace
}  // namespace kpt
