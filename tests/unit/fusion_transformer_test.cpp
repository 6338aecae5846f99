// Fusions of transformer-block patterns besides attention: residual add + normalization
// (fuse_skip_layer_norm), Silu-gated MLP (fuse_swiglu) and rotate_half rotary embeddings
// (fuse_rotary). The optimized graph must compute what the original did.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "analysis/shape_inference.hpp"
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
              int opset = 23) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), opset);
}

using testing::random_f32;

Tensor i64s(std::vector<int64_t> v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

ir::Shape shape_of(const Dims& d) {
  ir::Shape s;
  for (auto v : d) s.push_back(ir::Dim::of(v));
  return s;
}

ir::Graph graph_with_inputs(const std::vector<std::pair<std::string, Dims>>& inputs,
                            const std::vector<std::string>& outputs) {
  ir::Graph g;
  g.opsets[""] = 23;
  for (const auto& [name, dims] : inputs)
    g.inputs.push_back({name, ir::Type::tensor(DType::F32, shape_of(dims))});
  for (const auto& o : outputs) g.outputs.push_back({o, ir::Type::tensor(DType::F32)});
  return g;
}

using testing::optimize_and_compare;

// ---- residual add + normalization ----

// y = Norm(x + r) (LayerNormalization or RMSNormalization over the last axis); with
// `residual_continues` the sum is also added to y (pre-LN: the stream goes on from the sum).
ir::Graph add_norm_graph(const std::string& norm, bool residual_continues, bool bias = false,
                         const Dims& r_dims = {2, 3, 8}) {
  ir::Graph g = graph_with_inputs({{"x", {2, 3, 8}}, {"r", r_dims}}, {"y"});
  g.initializers["gamma"] = random_f32({8}, 3);
  g.initializers["beta"] = random_f32({8}, 4);
  g.initializers["bias"] = random_f32({8}, 5);
  if (bias) g.nodes.push_back(node("Add", {"bias", "x"}, {"xb"}));
  g.nodes.push_back(node("Add", {bias ? "xb" : "x", "r"}, {"s"}));
  ir::Node n = node(norm, {"s", "gamma"}, {residual_continues ? "n" : "y"});
  if (norm == "LayerNormalization") n.inputs.push_back("beta");
  n.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-3f);
  g.nodes.push_back(n);
  if (residual_continues) g.nodes.push_back(node("Add", {"s", "n"}, {"y"}));
  return g;
}

TEST(SkipNormFusion, PostNormBecomesSkipLayerNormalization) {
  ir::Graph opt = optimize_and_compare(add_norm_graph("LayerNormalization", false));
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  const ir::Node& n = opt.nodes[0];
  EXPECT_EQ(n.domain, "com.microsoft");
  EXPECT_EQ(n.op_type, "SkipLayerNormalization");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "r", "gamma", "beta"}));
  EXPECT_EQ(n.outputs, (std::vector<std::string>{"y"}));
  EXPECT_FLOAT_EQ(n.attr_float("epsilon", 0), 1e-3f);
}

TEST(SkipNormFusion, PreNormKeepsTheSumAsOutput) {
  ir::Graph opt = optimize_and_compare(add_norm_graph("LayerNormalization", true));
  ASSERT_EQ(count_ops(opt, "SkipLayerNormalization"), 1) << ir::print(opt);
  const ir::Node* n = find_op(opt, "SkipLayerNormalization");
  ASSERT_EQ(n->outputs.size(), 4u);
  EXPECT_EQ(n->outputs[3], "s");
  EXPECT_EQ(count_ops(opt, "Add"), 1);
}

TEST(SkipNormFusion, LayerNormStatisticsCarryOver) {
  ir::Graph g = add_norm_graph("LayerNormalization", false);
  g.nodes.back().outputs = {"y", "mean", "inv_std"};
  g.outputs.push_back({"mean", ir::Type::tensor(DType::F32)});
  g.outputs.push_back({"inv_std", ir::Type::tensor(DType::F32)});
  ir::Graph opt = optimize_and_compare(g);
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].outputs, (std::vector<std::string>{"y", "mean", "inv_std"}));
}

TEST(SkipNormFusion, BiasAddJoins) {
  ir::Graph opt = optimize_and_compare(add_norm_graph("LayerNormalization", false, true));
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].inputs, (std::vector<std::string>{"x", "r", "gamma", "beta", "bias"}));
}

TEST(SkipNormFusion, RmsNormBecomesSkipSimplifiedLayerNormalization) {
  for (bool residual : {false, true}) {
    ir::Graph opt = optimize_and_compare(add_norm_graph("RMSNormalization", residual));
    ASSERT_EQ(count_ops(opt, "SkipSimplifiedLayerNormalization"), 1) << ir::print(opt);
    EXPECT_EQ(count_ops(opt, "Add"), residual ? 1 : 0);
  }
}

TEST(SkipNormFusion, LlamaDecomposedRmsNormAfterResidual) {
  // s = x + r; y = w * (s * Reciprocal(Sqrt(ReduceMean(s^2) + eps))); out = s + y
  ir::Graph g = graph_with_inputs({{"x", {2, 3, 8}}, {"r", {2, 3, 8}}}, {"out"});
  g.initializers["two"] = Tensor::scalar<float>(DType::F32, 2.0f);
  g.initializers["eps"] = Tensor::scalar<float>(DType::F32, 1e-5f);
  g.initializers["axes"] = i64s({-1});
  g.initializers["w"] = random_f32({8}, 3);
  g.nodes.push_back(node("Add", {"x", "r"}, {"s"}, 20));
  g.nodes.push_back(node("Pow", {"s", "two"}, {"p"}, 20));
  g.nodes.push_back(node("ReduceMean", {"p", "axes"}, {"m"}, 20));
  g.nodes.push_back(node("Add", {"m", "eps"}, {"me"}, 20));
  g.nodes.push_back(node("Sqrt", {"me"}, {"sq"}, 20));
  g.nodes.push_back(node("Reciprocal", {"sq"}, {"rs"}, 20));
  g.nodes.push_back(node("Mul", {"s", "rs"}, {"nrm"}, 20));
  g.nodes.push_back(node("Mul", {"w", "nrm"}, {"y"}, 20));
  g.nodes.push_back(node("Add", {"s", "y"}, {"out"}, 20));
  ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "SkipSimplifiedLayerNormalization"), 1) << ir::print(opt);
  EXPECT_EQ(opt.nodes.size(), 2u) << ir::print(opt);
}

TEST(SkipNormFusion, BroadcastSkipOrMiddleAxisStays) {
  ir::Graph opt = optimize_and_compare(add_norm_graph("LayerNormalization", false, false, {3, 8}));
  EXPECT_EQ(count_ops(opt, "SkipLayerNormalization"), 0) << ir::print(opt);

  ir::Graph g = add_norm_graph("LayerNormalization", false);
  g.initializers["gamma"] = random_f32({3, 8}, 3);
  g.initializers["beta"] = random_f32({3, 8}, 4);
  g.nodes.back().attrs["axis"] = ir::Attribute::of_int("axis", -2);
  ir::Graph opt2 = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt2, "SkipLayerNormalization"), 0) << ir::print(opt2);
}

// ---- SwiGLU ----

// y = Silu(x @ wg) * (x @ wu), Silu as gate * Sigmoid(gate) in the operand orders given.
ir::Graph gated_mlp(bool sigmoid_first, bool silu_first, const Dims& up_dims = {2, 3, 6}) {
  ir::Graph g = graph_with_inputs({{"x", {2, 3, 4}}}, {"y"});
  g.initializers["wg"] = random_f32({4, 6}, 3);
  g.initializers["wu"] = random_f32({4, up_dims.back()}, 4);
  g.nodes.push_back(node("MatMul", {"x", "wg"}, {"gate"}, 20));
  g.nodes.push_back(node("MatMul", {"x", "wu"}, {"up"}, 20));
  g.nodes.push_back(node("Sigmoid", {"gate"}, {"sg"}, 20));
  g.nodes.push_back(node("Mul",
                         sigmoid_first ? std::vector<std::string>{"sg", "gate"}
                                       : std::vector<std::string>{"gate", "sg"},
                         {"silu"}, 20));
  g.nodes.push_back(node(
      "Mul",
      silu_first ? std::vector<std::string>{"silu", "up"} : std::vector<std::string>{"up", "silu"},
      {"y"}, 20));
  return g;
}

TEST(SwiGluFusion, SiluGateTimesUpBecomesSwiGlu) {
  for (bool a : {false, true}) {
    for (bool b : {false, true}) {
      ir::Graph opt = optimize_and_compare(gated_mlp(a, b));
      ASSERT_EQ(count_ops(opt, "SwiGLU"), 1) << ir::print(opt);
      const ir::Node* n = find_op(opt, "SwiGLU");
      EXPECT_EQ(n->inputs, (std::vector<std::string>{"gate", "up"}));
      EXPECT_GE(n->opset, 28);
      EXPECT_EQ(count_ops(opt, "MatMul"), 2);
      EXPECT_EQ(opt.nodes.size(), 3u);
    }
  }
}

TEST(SwiGluFusion, BroadcastingUpOrReusedGateStays) {
  // up of width 1 broadcasts in Mul, which SwiGLU does not do.
  ir::Graph opt = optimize_and_compare(gated_mlp(false, true, {2, 3, 1}));
  EXPECT_EQ(count_ops(opt, "SwiGLU"), 0) << ir::print(opt);

  ir::Graph g = gated_mlp(false, true);
  g.outputs.push_back({"gate", ir::Type::tensor(DType::F32)});
  ir::Graph opt2 = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt2, "SwiGLU"), 0) << ir::print(opt2);
}

// ---- rotary embedding ----

// q and k [batch, heads, seq, 8] rotated by rotate_half with angles f [f_batch, seq, 4], as the
// dynamo exporter writes Llama's apply_rotary_pos_emb.
ir::Graph rotary_graph(int64_t f_batch) {
  ir::Graph g = graph_with_inputs(
      {{"q", {2, 3, 5, 8}}, {"k", {2, 1, 5, 8}}, {"f", {f_batch, 5, 4}}}, {"q_rot", "k_rot"});
  g.initializers["one"] = i64s({1});
  g.initializers["zero"] = i64s({0});
  g.initializers["half"] = i64s({4});
  g.initializers["end"] = i64s({std::numeric_limits<int64_t>::max()});
  g.initializers["last"] = i64s({-1});
  ir::Node cat = node("Concat", {"f", "f"}, {"emb"}, 20);
  cat.attrs["axis"] = ir::Attribute::of_int("axis", -1);
  g.nodes.push_back(cat);
  g.nodes.push_back(node("Cos", {"emb"}, {"cos"}, 20));
  g.nodes.push_back(node("Sin", {"emb"}, {"sin"}, 20));
  g.nodes.push_back(node("Unsqueeze", {"cos", "one"}, {"cos4"}, 20));
  g.nodes.push_back(node("Unsqueeze", {"sin", "one"}, {"sin4"}, 20));
  for (const std::string x : {"q", "k"}) {
    g.nodes.push_back(node("Mul", {x, "cos4"}, {x + "_c"}, 20));
    g.nodes.push_back(node("Slice", {x, "zero", "half", "last", "one"}, {x + "_1"}, 20));
    g.nodes.push_back(node("Slice", {x, "half", "end", "last", "one"}, {x + "_2"}, 20));
    g.nodes.push_back(node("Neg", {x + "_2"}, {x + "_n"}, 20));
    ir::Node rot = node("Concat", {x + "_n", x + "_1"}, {x + "_r"}, 20);
    rot.attrs["axis"] = ir::Attribute::of_int("axis", -1);
    g.nodes.push_back(rot);
    g.nodes.push_back(node("Mul", {x + "_r", "sin4"}, {x + "_s"}, 20));
    g.nodes.push_back(node("Add", {x + "_c", x + "_s"}, {x + "_rot"}, 20));
  }
  return g;
}

TEST(RotaryFusion, BroadcastAnglesBecomePositionIndexedCaches) {
  ir::Graph opt = optimize_and_compare(rotary_graph(1));
  ASSERT_EQ(count_ops(opt, "RotaryEmbedding"), 2) << ir::print(opt);
  for (const auto& n : opt.nodes) {
    if (n.op_type != "RotaryEmbedding") continue;
    EXPECT_EQ(n.inputs.size(), 4u);  // with position ids
    EXPECT_EQ(n.attr_int("interleaved", -1), 0);
  }
  // One pair of caches serves both rotations.
  EXPECT_EQ(count_ops(opt, "Cos"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Neg"), 0);
}

TEST(RotaryFusion, PerBatchAnglesBecomeThreeDimensionalCaches) {
  ir::Graph opt = optimize_and_compare(rotary_graph(2));
  ASSERT_EQ(count_ops(opt, "RotaryEmbedding"), 2) << ir::print(opt);
  EXPECT_EQ(find_op(opt, "RotaryEmbedding")->inputs.size(), 3u);
  EXPECT_EQ(opt.nodes.size(), 4u) << ir::print(opt);  // Cos, Sin, two rotations
}

TEST(RotaryFusion, AnglesThatAreNotDuplicatedStay) {
  ir::Graph g = rotary_graph(1);
  // cos/sin of [f, f + 1]: the halves differ, so rotate_half is not a pairwise rotation.
  g.initializers["shift"] = random_f32({4}, 9);
  g.nodes.push_back(node("Add", {"f", "shift"}, {"f2"}, 20));
  g.nodes[0].inputs[1] = "f2";
  ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "RotaryEmbedding"), 0) << ir::print(opt);
}

// Shapes stay known through the fused ops, so later passes and kernel preparation see them.
TEST(RotaryFusion, FusedGraphsKeepTheirInferredShapes) {
  ir::Graph rot = rotary_graph(1);
  passes::optimize(rot, OptimizationLevel::Extended);
  rot.value_types.clear();
  analysis::infer_shapes(rot);
  ASSERT_TRUE(rot.type_of("k_rot") && rot.type_of("k_rot")->shape) << ir::print(rot);
  EXPECT_EQ(*rot.type_of("k_rot")->shape, shape_of({2, 1, 5, 8}));

  ir::Graph mlp = gated_mlp(false, true);
  passes::optimize(mlp, OptimizationLevel::Extended);
  mlp.value_types.clear();
  analysis::infer_shapes(mlp);
  ASSERT_TRUE(mlp.type_of("y") && mlp.type_of("y")->shape) << ir::print(mlp);
  EXPECT_EQ(*mlp.type_of("y")->shape, shape_of({2, 3, 6}));
}

}  // namespace
}  // namespace kpt
