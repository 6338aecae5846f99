#include <gtest/gtest.h>

#include <random>

#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"

namespace kpt {
namespace {

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out) {
  ir::Node n;
  n.op_type = std::move(op);
  n.name = out.empty() ? "" : out[0] + "_node";
  n.opset = 17;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Tensor random_f32(Dims dims, uint32_t seed) {
  Tensor t(DType::F32, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// y = (x + (w * 2)) + (x + (w * 2)) through an Identity, with a dead branch.
ir::Graph sample_graph() {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.initializers["w"] = random_f32({4}, 1);
  g.initializers["two"] = Tensor::scalar<float>(DType::F32, 2.0f);
  g.initializers["two_again"] = Tensor::scalar<float>(DType::F32, 2.0f);
  g.nodes.push_back(node("Mul", {"w", "two"}, {"w2"}));
  g.nodes.push_back(node("Add", {"x", "w2"}, {"a"}));
  g.nodes.push_back(node("Mul", {"w", "two_again"}, {"w2b"}));
  g.nodes.push_back(node("Add", {"x", "w2b"}, {"b"}));
  g.nodes.push_back(node("Identity", {"b"}, {"b_id"}));
  g.nodes.push_back(node("Sub", {"a", "x"}, {"unused"}));
  g.nodes.push_back(node("Add", {"a", "b_id"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

TEST(Passes, BasicPassesFoldMergeAndRemoveWithoutChangingResults) {
  ir::Graph reference = sample_graph();
  ir::Graph optimized = sample_graph();
  auto report = passes::optimize(optimized, OptimizationLevel::All);
  // Left: one Add for x + w2, and the final Add.
  EXPECT_EQ(optimized.nodes.size(), 2u) << ir::print(optimized);
  EXPECT_EQ(report.ops_after.at("Add"), 2);
  EXPECT_EQ(report.ops_after.count("Mul"), 0u);
  EXPECT_EQ(report.ops_after.count("Identity"), 0u);
  EXPECT_NE(report.explain().find("constant_folding"), std::string::npos);

  Tensor x = random_f32({3, 4}, 7);
  auto want = runtime::run_graph(reference, {Value::of(x)});
  auto got = runtime::run_graph(optimized, {Value::of(x)});
  ASSERT_EQ(want[0].tensor.numel(), got[0].tensor.numel());
  for (int64_t i = 0; i < want[0].tensor.numel(); ++i) {
    EXPECT_FLOAT_EQ(want[0].tensor.data<float>()[i], got[0].tensor.data<float>()[i]);
  }
}

TEST(Passes, LevelNoneChangesNothing) {
  ir::Graph g = sample_graph();
  auto report = passes::optimize(g, OptimizationLevel::None);
  EXPECT_EQ(g.nodes.size(), 7u);
  EXPECT_TRUE(report.applied.empty());
}

TEST(Passes, OverridableInitializersAreNotFolded) {
  ir::Graph g = sample_graph();
  g.inputs.push_back({"w", ir::Type::tensor(DType::F32)});  // w may be fed at run time
  passes::optimize(g, OptimizationLevel::All);
  bool has_mul = false;
  for (const auto& n : g.nodes) has_mul |= n.op_type == "Mul";
  EXPECT_TRUE(has_mul);
}

TEST(Passes, GraphOutputProducedByIdentityKeepsItsName) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.nodes.push_back(node("Identity", {"x"}, {"y"}));
  passes::optimize(g, OptimizationLevel::All);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
}

TEST(Passes, UnknownLevelNameIsAClearError) {
  EXPECT_THROW(passes::level_from_name("fast"), Error);
}

}  // namespace
}  // namespace kpt

namespace kpt {
namespace {

// y = (a - b) / b, so dy/da = 1 / b and dy/db = -a / b^2.
TEST(Passes, GradientIsLoweredToItsDerivatives) {
  ir::Graph g;
  g.opsets[""] = 12;
  const ir::Shape shape = {ir::Dim::of(2), ir::Dim::of(3)};
  g.inputs.push_back({"a", ir::Type::tensor(DType::F32, shape)});
  g.inputs.push_back({"b", ir::Type::tensor(DType::F32, shape)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32, shape)});
  g.outputs.push_back({"dy_da", ir::Type::tensor(DType::F32, shape)});
  g.outputs.push_back({"dy_db", ir::Type::tensor(DType::F32, shape)});
  g.nodes.push_back(node("Sub", {"a", "b"}, {"d"}));
  g.nodes.push_back(node("Div", {"d", "b"}, {"y"}));
  ir::Node grad = node("Gradient", {"a", "b"}, {"dy_da", "dy_db"});
  grad.domain = "ai.onnx.preview.training";
  grad.opset = 1;
  ir::Attribute xs;
  xs.name = "xs";
  xs.kind = ir::Attribute::Kind::Strings;
  xs.strings = {"a", "b"};
  grad.attrs["xs"] = xs;
  grad.attrs["y"] = ir::Attribute::of_string("y", "y");
  g.nodes.push_back(grad);
  ir::sort_and_verify(g);
  auto report = passes::optimize(g, OptimizationLevel::None);
  EXPECT_EQ(report.applied.at(0).pass, "lower_gradient");
  Tensor a = random_f32({2, 3}, 3);
  Tensor b = random_f32({2, 3}, 4);
  for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] += 2.0f;  // away from zero
  auto out = runtime::run_graph(g, {Value::of(a), Value::of(b)});
  for (int64_t i = 0; i < a.numel(); ++i) {
    float av = a.data<float>()[i], bv = b.data<float>()[i];
    EXPECT_NEAR(out[1].tensor.data<float>()[i], 1.0f / bv, 1e-5);
    EXPECT_NEAR(out[2].tensor.data<float>()[i], -av / (bv * bv), 1e-5);
  }
}

}  // namespace
}  // namespace kpt
