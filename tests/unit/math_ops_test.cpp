// Math kernels on the cases the conformance data leaves out: implicit einsum outputs with
// repeated labels, ellipsis broadcasting, empty reductions, TopK ties, pre-13 Softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/graph.hpp"
#include "ops/registry.hpp"

namespace kpt {
namespace {

Tensor f32(Dims dims, std::vector<float> values) {
  Tensor t(DType::F32, std::move(dims));
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return t;
}

std::vector<Value> run(const std::string& op, int opset, std::vector<Tensor> inputs,
                       size_t num_outputs, std::vector<ir::Attribute> attrs = {}) {
  ir::Node node;
  node.op_type = op;
  node.opset = opset;
  for (size_t i = 0; i < inputs.size(); ++i) node.inputs.push_back("x" + std::to_string(i));
  for (size_t i = 0; i < num_outputs; ++i) node.outputs.push_back("y" + std::to_string(i));
  for (auto& a : attrs) node.attrs[a.name] = a;
  std::vector<Value> in_values;
  for (auto& t : inputs) in_values.push_back(Value::of(t));
  std::vector<const Value*> in_ptrs;
  for (auto& v : in_values) in_ptrs.push_back(&v);
  std::vector<Value> outputs(num_outputs);
  ops::KernelContext ctx(node, in_ptrs, outputs, nullptr);
  const ops::OpEntry* entry = ops::Registry::instance().find("", op, opset);
  EXPECT_NE(entry, nullptr) << op;
  if (entry) entry->kernel(ctx);
  return outputs;
}

TEST(MathOps, EinsumImplicitRepeatedLabelIsTrace) {
  auto out = run("Einsum", 12, {f32({2, 2}, {1, 2, 3, 4})}, 1,
                 {ir::Attribute::of_string("equation", "ii")});
  ASSERT_EQ(out[0].tensor.rank(), 0u);
  EXPECT_FLOAT_EQ(out[0].tensor.data<float>()[0], 5.0f);
}

TEST(MathOps, EinsumEllipsisBroadcastsBatch) {
  // [2,1,1,2] x [3,2,1] -> [2,3,1,1]
  auto out =
      run("Einsum", 12, {f32({2, 1, 1, 2}, {1, 2, 3, 4}), f32({3, 2, 1}, {1, 1, 2, 2, 3, 3})}, 1,
          {ir::Attribute::of_string("equation", "...ij,...jk->...ik")});
  EXPECT_EQ(out[0].tensor.dims(), (Dims{2, 3, 1, 1}));
  EXPECT_FLOAT_EQ(out[0].tensor.data<float>()[2], 9.0f);  // [1,2] . [3,3]
  EXPECT_FLOAT_EQ(out[0].tensor.data<float>()[3], 7.0f);  // [3,4] . [1,1]
}

TEST(MathOps, ReductionsOverEmptySet) {
  const Tensor x(DType::F32, {2, 0});
  Tensor axes(DType::I64, {1});
  axes.data<int64_t>()[0] = 1;
  auto mx = run("ReduceMax", 18, {x, axes}, 1);
  auto sum = run("ReduceSum", 13, {x, axes}, 1);
  ASSERT_EQ(mx[0].tensor.dims(), (Dims{2, 1}));
  EXPECT_EQ(mx[0].tensor.data<float>()[0], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(sum[0].tensor.data<float>()[1], 0.0f);
}

TEST(MathOps, TopKTiesKeepLowerIndexFirst) {
  Tensor k(DType::I64, {1});
  k.data<int64_t>()[0] = 2;
  auto out = run("TopK", 11, {f32({4}, {1, 3, 3, 3}), k}, 2);
  EXPECT_EQ(out[1].tensor.data<int64_t>()[0], 1);
  EXPECT_EQ(out[1].tensor.data<int64_t>()[1], 2);
}

TEST(MathOps, SoftmaxBeforeOpset13CoercesTo2D) {
  const Tensor x = f32({2, 2}, {0, 0, 0, 0});
  auto old = run("Softmax", 11, {x}, 1, {ir::Attribute::of_int("axis", 0)});
  auto now = run("Softmax", 13, {x}, 1, {ir::Attribute::of_int("axis", 0)});
  EXPECT_FLOAT_EQ(old[0].tensor.data<float>()[0], 0.25f);  // one row of 4
  EXPECT_FLOAT_EQ(now[0].tensor.data<float>()[0], 0.5f);   // columns of 2
}

}  // namespace
}  // namespace kpt
