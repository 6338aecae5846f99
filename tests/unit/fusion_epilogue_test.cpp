// fuse_matmul_add: linear layers with bias and activation become one kpt.MatMulBiasAct; the
// optimized graph must compute what the original did.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/graph.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"
#include "tests/testing/pass_check.hpp"

namespace kpt {
namespace {

using testing::count_ops;
using testing::find_op;

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
              int opset = 20) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), opset);
}

using testing::random_f32;

ir::Shape shape_of(const Dims& d) {
  ir::Shape s;
  for (auto v : d) s.push_back(ir::Dim::of(v));
  return s;
}

// A graph with input x of `x_dims`, weight w [K, 5], bias [5] and outputs `outputs`.
ir::Graph linear_base(const Dims& x_dims, std::vector<std::string> outputs = {"y"}) {
  ir::Graph g;
  g.opsets[""] = 20;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, shape_of(x_dims))});
  for (auto& o : outputs) g.outputs.push_back({o, ir::Type::tensor(DType::F32)});
  g.initializers["w"] = random_f32({x_dims.back(), 5}, 6);
  g.initializers["bias"] = random_f32({5}, 7);
  return g;
}

using testing::optimize_and_compare;

void expect_one_fused(const ir::Graph& opt, const std::string& activation, bool bias) {
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  const ir::Node& n = opt.nodes[0];
  EXPECT_EQ(n.domain, "kpt");
  EXPECT_EQ(n.op_type, "MatMulBiasAct");
  EXPECT_EQ(n.attr_string("activation", "?"), activation);
  EXPECT_EQ(n.inputs.size(), bias ? 3u : 2u);
}

TEST(EpilogueFusion, MatMulAddOfAnyRankInEitherOrder) {
  for (const Dims& x : {Dims{3, 7}, Dims{2, 3, 7}, Dims{2, 2, 3, 7}}) {
    for (bool bias_first : {false, true}) {
      ir::Graph g = linear_base(x);
      g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
      g.nodes.push_back(node("Add",
                             bias_first ? std::vector<std::string>{"bias", "mm"}
                                        : std::vector<std::string>{"mm", "bias"},
                             {"y"}));
      expect_one_fused(optimize_and_compare(g), "", true);
    }
  }
}

// y = activation(x @ w + bias) in the forms exporters write.
ir::Graph linear_activation(const std::string& act, bool bias = true) {
  ir::Graph g = linear_base({2, 3, 7});
  g.initializers["half"] = Tensor::scalar<float>(DType::F32, 0.5f);
  g.initializers["one"] = Tensor::scalar<float>(DType::F32, 1.0f);
  g.initializers["sqrt2"] = Tensor::scalar<float>(DType::F32, 1.4142135f);
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  const std::string z = bias ? "z" : "mm";
  if (bias) g.nodes.push_back(node("Add", {"mm", "bias"}, {"z"}));
  if (act == "Silu") {
    g.nodes.push_back(node("Sigmoid", {z}, {"s"}));
    g.nodes.push_back(node("Mul", {"s", z}, {"y"}));
  } else if (act == "ErfGelu") {  // fuse_gelu makes it a Gelu first
    g.nodes.push_back(node("Div", {z, "sqrt2"}, {"d"}));
    g.nodes.push_back(node("Erf", {"d"}, {"e"}));
    g.nodes.push_back(node("Add", {"e", "one"}, {"e1"}));
    g.nodes.push_back(node("Mul", {z, "e1"}, {"p"}));
    g.nodes.push_back(node("Mul", {"p", "half"}, {"y"}));
  } else if (act == "GeluTanh") {
    ir::Node n = node("Gelu", {z}, {"y"});
    n.attrs["approximate"] = ir::Attribute::of_string("approximate", "tanh");
    g.nodes.push_back(n);
  } else {
    g.nodes.push_back(node(act, {z}, {"y"}));
  }
  return g;
}

TEST(EpilogueFusion, ActivationsJoinTheMatMul) {
  const std::pair<const char*, const char*> cases[] = {
      {"Relu", "Relu"}, {"Sigmoid", "Sigmoid"}, {"Tanh", "Tanh"},         {"Gelu", "Gelu"},
      {"Silu", "Silu"}, {"ErfGelu", "Gelu"},    {"GeluTanh", "GeluTanh"},
  };
  for (const auto& [pattern, activation] : cases) {
    SCOPED_TRACE(pattern);
    expect_one_fused(optimize_and_compare(linear_activation(pattern)), activation, true);
  }
}

TEST(EpilogueFusion, MatMulWithoutBiasTakesItsActivation) {
  expect_one_fused(optimize_and_compare(linear_activation("Relu", false)), "Relu", false);
  expect_one_fused(optimize_and_compare(linear_activation("Silu", false)), "Silu", false);
}

TEST(EpilogueFusion, PlainMatMulStays) {
  ir::Graph g = linear_base({2, 3, 7});
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"y"}));
  ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "MatMul"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "MatMulBiasAct"), 0);
}

TEST(EpilogueFusion, StopsWhereAnIntermediateHasAnotherReader) {
  // The biased sum is also an output: bias fuses, the Relu stays apart.
  ir::Graph g = linear_base({2, 3, 7}, {"y", "z"});
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  g.nodes.push_back(node("Add", {"mm", "bias"}, {"z"}));
  g.nodes.push_back(node("Relu", {"z"}, {"y"}));
  ir::Graph opt = optimize_and_compare(g);
  ASSERT_EQ(count_ops(opt, "MatMulBiasAct"), 1) << ir::print(opt);
  EXPECT_EQ(find_op(opt, "MatMulBiasAct")->attr_string("activation", "?"), "");
  EXPECT_EQ(count_ops(opt, "Relu"), 1);

  // The product itself is read twice: nothing fuses.
  ir::Graph h = linear_base({2, 3, 7}, {"y", "mm"});
  h.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  h.nodes.push_back(node("Add", {"mm", "bias"}, {"y"}));
  ir::Graph opt_h = optimize_and_compare(h);
  EXPECT_EQ(count_ops(opt_h, "MatMulBiasAct"), 0) << ir::print(opt_h);

  // Silu whose input is read a third time stays unfused.
  ir::Graph s = linear_activation("Silu");
  s.outputs.push_back({"z", ir::Type::tensor(DType::F32)});
  ir::Graph opt_s = optimize_and_compare(s);
  ASSERT_EQ(count_ops(opt_s, "MatMulBiasAct"), 1) << ir::print(opt_s);
  EXPECT_EQ(find_op(opt_s, "MatMulBiasAct")->attr_string("activation", "?"), "");
  EXPECT_EQ(count_ops(opt_s, "Sigmoid"), 1);
}

TEST(EpilogueFusion, OnlyRowBiasesFuse) {
  ir::Graph g = linear_base({2, 3, 7});
  g.initializers["bias"] = random_f32({3, 5}, 8);  // one bias per row: not a linear bias
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  g.nodes.push_back(node("Add", {"mm", "bias"}, {"y"}));
  ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "MatMulBiasAct"), 0) << ir::print(opt);

  ir::Graph h = linear_base({2, 3, 7});
  h.initializers["bias"] = random_f32({1, 1, 5}, 8);  // [1, 1, N] onto a 3-D product
  h.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  h.nodes.push_back(node("Add", {"mm", "bias"}, {"y"}));
  expect_one_fused(optimize_and_compare(h), "", true);

  ir::Graph r = linear_base({3, 7});
  r.initializers["bias"] = random_f32({1, 1, 5}, 8);  // would raise a 2-D product to 3-D
  r.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  r.nodes.push_back(node("Add", {"mm", "bias"}, {"y"}));
  ir::Graph opt_r = optimize_and_compare(r);
  EXPECT_EQ(count_ops(opt_r, "MatMulBiasAct"), 0) << ir::print(opt_r);
}

TEST(EpilogueFusion, BatchedRightOperandIsLeftAlone) {
  ir::Graph g = linear_base({2, 3, 7});
  g.inputs.push_back({"k", ir::Type::tensor(DType::F32, shape_of({2, 7, 5}))});
  g.nodes.push_back(node("MatMul", {"x", "k"}, {"mm"}));
  g.nodes.push_back(node("Add", {"mm", "bias"}, {"y"}));
  ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "MatMulBiasAct"), 0) << ir::print(opt);
}

TEST(EpilogueFusion, NonConstantTwoDimensionalWeight) {
  ir::Graph g = linear_base({2, 3, 7});
  g.initializers.erase("w");
  g.inputs.push_back({"w", ir::Type::tensor(DType::F32, shape_of({7, 5}))});
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  g.nodes.push_back(node("Add", {"bias", "mm"}, {"z"}));
  g.nodes.push_back(node("Tanh", {"z"}, {"y"}));
  expect_one_fused(optimize_and_compare(g), "Tanh", true);
}

// Gemm(x, w^T, c) as TorchScript writes nn.Linear on 2-D input.
ir::Graph gemm_graph(float alpha, bool relu) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, shape_of({4, 7}))});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.initializers["w"] = random_f32({5, 7}, 6);
  g.initializers["c"] = random_f32({5}, 7);
  ir::Node gemm = node("Gemm", {"x", "w", "c"}, {relu ? "z" : "y"}, 17);
  gemm.attrs["transB"] = ir::Attribute::of_int("transB", 1);
  gemm.attrs["alpha"] = ir::Attribute::of_float("alpha", alpha);
  g.nodes.push_back(gemm);
  if (relu) g.nodes.push_back(node("Relu", {"z"}, {"y"}, 17));
  return g;
}

TEST(EpilogueFusion, GemmWithTransposedWeightAndActivation) {
  ir::Graph opt = optimize_and_compare(gemm_graph(1.0f, true));
  expect_one_fused(opt, "Relu", true);
  // The transpose of the weight was folded into a [K, N] initializer.
  const Tensor& w = opt.initializers.at(opt.nodes[0].inputs[1]);
  EXPECT_EQ(w.dims(), (Dims{7, 5}));
  expect_one_fused(optimize_and_compare(gemm_graph(1.0f, false)), "", true);
}

TEST(EpilogueFusion, ScaledGemmStays) {
  ir::Graph opt = optimize_and_compare(gemm_graph(2.0f, true));
  EXPECT_EQ(count_ops(opt, "Gemm"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "MatMulBiasAct"), 0);
}

TEST(EpilogueFusion, GemmWithoutBiasOnAWeightInput) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, shape_of({4, 7}))});
  g.inputs.push_back({"w", ir::Type::tensor(DType::F32, shape_of({7, 5}))});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.nodes.push_back(node("Gemm", {"x", "w"}, {"z"}, 17));
  g.nodes.push_back(node("Sigmoid", {"z"}, {"y"}, 17));
  expect_one_fused(optimize_and_compare(g), "Sigmoid", false);
}

}  // namespace
}  // namespace kpt
