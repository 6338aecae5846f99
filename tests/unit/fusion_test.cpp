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

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
              int opset = 17) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), opset);
}

using testing::random_f32;

Tensor f32(float v) {
  return Tensor::scalar<float>(DType::F32, v);
}

Tensor i64s(std::vector<int64_t> v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

ir::Graph graph_with_input(const Dims& x_dims, int opset) {
  ir::Graph g;
  g.opsets[""] = opset;
  ir::Shape s;
  for (auto d : x_dims) s.push_back(ir::Dim::of(d));
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, s)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  return g;
}

// Optimizes a copy at Extended and checks that the outputs match the original on random input.
ir::Graph optimize_and_compare(const ir::Graph& reference, const Dims& x_dims, double tol = 1e-5) {
  ir::Graph optimized = reference;
  passes::optimize(optimized, OptimizationLevel::Extended);
  Tensor x = random_f32(x_dims, 11);
  testing::expect_outputs_close(runtime::run_graph(reference, {Value::of(x)}),
                                runtime::run_graph(optimized, {Value::of(x)}), tol);
  return optimized;
}

// The TorchScript LayerNorm below opset 17; axes as attribute (opset 13) or input (opset 18).
ir::Graph layer_norm_graph(int opset, bool with_beta, bool variance_is_output = false) {
  ir::Graph g = graph_with_input({2, 3, 8}, opset);
  g.initializers["two"] = f32(2.0f);
  g.initializers["eps"] = f32(1e-5f);
  g.initializers["gamma"] = random_f32({8}, 3);
  g.initializers["beta"] = random_f32({8}, 4);
  g.initializers["axes"] = i64s({-1});
  auto mean = [&](const std::string& in, const std::string& out) {
    if (opset >= 18) return node("ReduceMean", {in, "axes"}, {out}, opset);
    ir::Node n = node("ReduceMean", {in}, {out}, opset);
    n.attrs["axes"] = ir::Attribute::of_ints("axes", {-1});
    return n;
  };
  g.nodes.push_back(mean("x", "m"));
  g.nodes.push_back(node("Sub", {"x", "m"}, {"d"}, opset));
  g.nodes.push_back(node("Pow", {"d", "two"}, {"p"}, opset));
  g.nodes.push_back(mean("p", "v"));
  g.nodes.push_back(node("Add", {"v", "eps"}, {"ve"}, opset));
  g.nodes.push_back(node("Sqrt", {"ve"}, {"s"}, opset));
  g.nodes.push_back(node("Div", {"d", "s"}, {"n"}, opset));
  g.nodes.push_back(node("Mul", {"n", "gamma"}, {with_beta ? "ng" : "y"}, opset));
  if (with_beta) g.nodes.push_back(node("Add", {"ng", "beta"}, {"y"}, opset));
  if (variance_is_output) g.outputs.push_back({"v", ir::Type::tensor(DType::F32)});
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, LayerNormFromReduceMeanChain) {
  for (int opset : {13, 18}) {
    for (bool beta : {true, false}) {
      ir::Graph g = layer_norm_graph(opset, beta);
      ir::Graph opt = optimize_and_compare(g, {2, 3, 8});
      EXPECT_EQ(count_ops(opt, "LayerNormalization"), 1) << ir::print(opt);
      EXPECT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
    }
  }
}

TEST(Fusion, LayerNormNotFusedWhenAnIntermediateIsRead) {
  ir::Graph g = layer_norm_graph(13, true, /*variance_is_output=*/true);
  ir::Graph opt = optimize_and_compare(g, {2, 3, 8});
  EXPECT_EQ(count_ops(opt, "LayerNormalization"), 0) << ir::print(opt);
}

TEST(Fusion, LayerNormNotFusedOverAMiddleAxis) {
  ir::Graph g = layer_norm_graph(13, true);
  for (auto& n : g.nodes) {
    if (n.op_type == "ReduceMean") n.attrs["axes"] = ir::Attribute::of_ints("axes", {1});
  }
  g.initializers["gamma"] = random_f32({1}, 3);
  g.initializers["beta"] = random_f32({1}, 4);
  ir::Graph opt = optimize_and_compare(g, {2, 3, 8});
  EXPECT_EQ(count_ops(opt, "LayerNormalization"), 0) << ir::print(opt);
}

// Erf GELU with the 1/sqrt(2) scale as Div or Mul and the 0.5 in each of its three places.
ir::Graph erf_gelu_graph(bool div_scale, int half_place, float half = 0.5f) {
  ir::Graph g = graph_with_input({4, 6}, 17);
  g.initializers["sqrt2"] = f32(1.4142135f);
  g.initializers["inv_sqrt2"] = f32(0.70710677f);
  g.initializers["one"] = f32(1.0f);
  g.initializers["half"] = f32(half);
  if (div_scale) {
    g.nodes.push_back(node("Div", {"x", "sqrt2"}, {"a"}));
  } else {
    g.nodes.push_back(node("Mul", {"inv_sqrt2", "x"}, {"a"}));
  }
  g.nodes.push_back(node("Erf", {"a"}, {"e"}));
  g.nodes.push_back(node("Add", {"e", "one"}, {"b"}));
  if (half_place == 0) {  // (x * b) * 0.5
    g.nodes.push_back(node("Mul", {"x", "b"}, {"c"}));
    g.nodes.push_back(node("Mul", {"c", "half"}, {"y"}));
  } else if (half_place == 1) {  // (x * 0.5) * b
    g.nodes.push_back(node("Mul", {"x", "half"}, {"h"}));
    g.nodes.push_back(node("Mul", {"h", "b"}, {"y"}));
  } else {  // x * (b * 0.5)
    g.nodes.push_back(node("Mul", {"half", "b"}, {"b2"}));
    g.nodes.push_back(node("Mul", {"b2", "x"}, {"y"}));
  }
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, ErfGeluVariants) {
  for (bool div_scale : {true, false}) {
    for (int place : {0, 1, 2}) {
      ir::Graph opt = optimize_and_compare(erf_gelu_graph(div_scale, place), {4, 6});
      ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
      EXPECT_EQ(opt.nodes[0].op_type, "Gelu");
      EXPECT_EQ(opt.nodes[0].attr_string("approximate", ""), "none");
    }
  }
}

TEST(Fusion, ErfGeluNotFusedWithAnotherConstant) {
  ir::Graph opt = optimize_and_compare(erf_gelu_graph(true, 0, 0.6f), {4, 6});
  EXPECT_EQ(count_ops(opt, "Gelu"), 0) << ir::print(opt);
}

ir::Graph tanh_gelu_graph(bool pow_cube) {
  ir::Graph g = graph_with_input({3, 5}, 17);
  g.initializers["three"] = f32(3.0f);
  g.initializers["c"] = f32(0.044715f);
  g.initializers["k"] = f32(0.7978845608f);
  g.initializers["one"] = f32(1.0f);
  g.initializers["half"] = f32(0.5f);
  if (pow_cube) {
    g.nodes.push_back(node("Pow", {"x", "three"}, {"x3"}));
  } else {
    g.nodes.push_back(node("Mul", {"x", "x"}, {"x2"}));
    g.nodes.push_back(node("Mul", {"x2", "x"}, {"x3"}));
  }
  g.nodes.push_back(node("Mul", {"c", "x3"}, {"w"}));
  g.nodes.push_back(node("Add", {"x", "w"}, {"v"}));
  g.nodes.push_back(node("Mul", {"k", "v"}, {"u"}));
  g.nodes.push_back(node("Tanh", {"u"}, {"t"}));
  g.nodes.push_back(node("Add", {"one", "t"}, {"b"}));
  g.nodes.push_back(node("Mul", {"half", "x"}, {"h"}));
  g.nodes.push_back(node("Mul", {"h", "b"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, TanhGeluWithPowOrProductCube) {
  for (bool pow_cube : {true, false}) {
    ir::Graph opt = optimize_and_compare(tanh_gelu_graph(pow_cube), {3, 5});
    ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
    EXPECT_EQ(opt.nodes[0].op_type, "Gelu");
    EXPECT_EQ(opt.nodes[0].attr_string("approximate", ""), "tanh");
  }
}

// Llama's RMSNorm as the dynamo exporter writes it (opset 20, axes as input).
ir::Graph rms_norm_graph(bool reciprocal) {
  ir::Graph g = graph_with_input({2, 4, 16}, 20);
  g.initializers["two"] = f32(2.0f);
  g.initializers["axes"] = i64s({-1});
  g.initializers["eps"] = f32(1e-6f);
  g.initializers["weight"] = random_f32({16}, 5);
  ir::Node mean = node("ReduceMean", {"p", "axes"}, {"m"}, 20);
  mean.attrs["keepdims"] = ir::Attribute{};
  mean.attrs["keepdims"].name = "keepdims";
  mean.attrs["keepdims"].kind = ir::Attribute::Kind::Int;
  mean.attrs["keepdims"].i = 1;
  g.nodes.push_back(node("Pow", {"x", "two"}, {"p"}, 20));
  g.nodes.push_back(mean);
  g.nodes.push_back(node("Add", {"m", "eps"}, {"me"}, 20));
  g.nodes.push_back(node("Sqrt", {"me"}, {"s"}, 20));
  if (reciprocal) {
    g.nodes.push_back(node("Reciprocal", {"s"}, {"r"}, 20));
    g.nodes.push_back(node("Mul", {"x", "r"}, {"n"}, 20));
  } else {
    g.nodes.push_back(node("Div", {"x", "s"}, {"n"}, 20));
  }
  g.nodes.push_back(node("Mul", {"weight", "n"}, {"y"}, 20));
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, RmsNormFromLlamaPattern) {
  for (bool reciprocal : {true, false}) {
    ir::Graph opt = optimize_and_compare(rms_norm_graph(reciprocal), {2, 4, 16});
    ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
    EXPECT_EQ(opt.nodes[0].op_type, "RMSNormalization");
    EXPECT_EQ(opt.nodes[0].opset, 23);
  }
}

TEST(Fusion, RmsNormNotFusedWhenTheRmsIsRead) {
  ir::Graph g = rms_norm_graph(true);
  g.outputs.push_back({"s", ir::Type::tensor(DType::F32)});
  ir::Graph opt = optimize_and_compare(g, {2, 4, 16});
  EXPECT_EQ(count_ops(opt, "RMSNormalization"), 0) << ir::print(opt);
}

// Half-precision RMSNorm: x cast to float for the statistics, the result cast back to half.
TEST(Fusion, RmsNormThroughCastsToFloatAndBack) {
  const Dims dims = {2, 3, 16};
  ir::Graph g;
  g.opsets[""] = 20;
  g.inputs.push_back({"x", ir::Type::tensor(DType::F16, ir::Shape{ir::Dim::of(2), ir::Dim::of(3),
                                                                  ir::Dim::of(16)})});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F16)});
  g.initializers["two"] = f32(2.0f);
  g.initializers["axes"] = i64s({-1});
  g.initializers["eps"] = f32(1e-6f);
  Tensor w(DType::F16, {16});
  Tensor wf = random_f32({16}, 8);
  for (int64_t i = 0; i < 16; ++i) w.data<uint16_t>()[i] = float_to_half(wf.data<float>()[i]);
  g.initializers["weight"] = w;
  ir::Node up = node("Cast", {"x"}, {"xf"}, 20);
  up.attrs["to"] = ir::Attribute{};
  up.attrs["to"].name = "to";
  up.attrs["to"].kind = ir::Attribute::Kind::Int;
  up.attrs["to"].i = static_cast<int64_t>(DType::F32);
  ir::Node down = node("Cast", {"n"}, {"nh"}, 20);
  down.attrs["to"] = up.attrs["to"];
  down.attrs["to"].i = static_cast<int64_t>(DType::F16);
  g.nodes.push_back(up);
  g.nodes.push_back(node("Pow", {"xf", "two"}, {"p"}, 20));
  g.nodes.push_back(node("ReduceMean", {"p", "axes"}, {"m"}, 20));
  g.nodes.push_back(node("Add", {"m", "eps"}, {"me"}, 20));
  g.nodes.push_back(node("Sqrt", {"me"}, {"s"}, 20));
  g.nodes.push_back(node("Reciprocal", {"s"}, {"r"}, 20));
  g.nodes.push_back(node("Mul", {"xf", "r"}, {"n"}, 20));
  g.nodes.push_back(down);
  g.nodes.push_back(node("Mul", {"weight", "nh"}, {"y"}, 20));
  ir::sort_and_verify(g);

  ir::Graph opt = g;
  passes::optimize(opt, OptimizationLevel::Extended);
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].op_type, "RMSNormalization");
  EXPECT_EQ(opt.nodes[0].inputs[0], "x");

  Tensor x(DType::F16, dims);
  Tensor xf = random_f32(dims, 9);
  for (int64_t i = 0; i < x.numel(); ++i)
    x.data<uint16_t>()[i] = float_to_half(xf.data<float>()[i]);
  auto want = runtime::run_graph(g, {Value::of(x)});
  auto got = runtime::run_graph(opt, {Value::of(x)});
  ASSERT_EQ(got[0].tensor.dtype(), DType::F16);
  ASSERT_EQ(want[0].tensor.dims(), got[0].tensor.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float a = half_to_float(want[0].tensor.data<uint16_t>()[i]);
    const float b = half_to_float(got[0].tensor.data<uint16_t>()[i]);
    ASSERT_NEAR(a, b, 2e-3 * (1 + std::abs(a))) << "element " << i;
  }
}

ir::Graph linear_graph(const Dims& x_dims) {
  ir::Graph g = graph_with_input(x_dims, 17);
  g.initializers["w"] = random_f32({x_dims.back(), 5}, 6);
  g.initializers["bias"] = random_f32({5}, 7);
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"mm"}));
  g.nodes.push_back(node("Add", {"bias", "mm"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, MatMulAddBecomesMatMulBiasActForAnyRank) {
  ir::Graph opt = optimize_and_compare(linear_graph({3, 7}), {3, 7});
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].op_type, "MatMulBiasAct");

  ir::Graph batched = optimize_and_compare(linear_graph({2, 3, 7}), {2, 3, 7});
  ASSERT_EQ(batched.nodes.size(), 1u) << ir::print(batched);
  EXPECT_EQ(batched.nodes[0].op_type, "MatMulBiasAct");
}

// Attention as the TorchScript exporter writes nn.MultiheadAttention: 3-D [batch * heads, seq,
// size] operands, Q divided by sqrt(size), K^T as one Transpose from [seq, batch * heads, size].
ir::Graph attention_3d_graph(bool with_mask) {
  ir::Graph g;
  g.opsets[""] = 17;
  auto shape = [](Dims d) {
    ir::Shape s;
    for (auto v : d) s.push_back(ir::Dim::of(v));
    return s;
  };
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, shape({6, 5, 4}))});  // Q
  // K and V are inputs with defaults, so that constant folding leaves the Transpose in place.
  g.inputs.push_back({"k_seq_first", ir::Type::tensor(DType::F32, shape({7, 6, 4}))});
  g.inputs.push_back({"v", ir::Type::tensor(DType::F32, shape({6, 7, 4}))});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.initializers["k_seq_first"] = random_f32({7, 6, 4}, 21);
  g.initializers["v"] = random_f32({6, 7, 4}, 22);
  g.initializers["c"] = f32(2.0f);
  g.initializers["mask"] = random_f32({5, 7}, 23);
  ir::Node tr = node("Transpose", {"k_seq_first"}, {"kt"});
  tr.attrs["perm"] = ir::Attribute::of_ints("perm", {1, 2, 0});
  g.nodes.push_back(tr);
  g.nodes.push_back(node("Div", {"x", "c"}, {"qs"}));
  g.nodes.push_back(node("MatMul", {"qs", "kt"}, {"scores"}));
  if (with_mask) g.nodes.push_back(node("Add", {"scores", "mask"}, {"masked"}));
  g.nodes.push_back(node("Softmax", {with_mask ? "masked" : "scores"}, {"p"}));
  g.nodes.push_back(node("MatMul", {"p", "v"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

TEST(Fusion, AttentionFrom3DMultiheadPattern) {
  ir::Graph opt = optimize_and_compare(attention_3d_graph(false), {6, 5, 4});
  EXPECT_EQ(count_ops(opt, "Attention"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Softmax"), 0) << ir::print(opt);
}

TEST(Fusion, AttentionWithAdditiveMaskIsFused) {
  ir::Graph opt = optimize_and_compare(attention_3d_graph(true), {6, 5, 4});
  EXPECT_EQ(count_ops(opt, "Attention"), 1) << ir::print(opt);
}

TEST(Fusion, AttentionFrom4DWithScaledScores) {
  ir::Graph g;
  g.opsets[""] = 18;
  ir::Shape s;
  for (auto v : {2, 3, 5, 4}) s.push_back(ir::Dim::of(v));
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, s)});
  ir::Shape ks, vs;
  for (auto v : {2, 3, 6, 4}) ks.push_back(ir::Dim::of(v));
  for (auto v : {2, 3, 6, 8}) vs.push_back(ir::Dim::of(v));
  g.inputs.push_back({"k", ir::Type::tensor(DType::F32, ks)});
  g.inputs.push_back({"v", ir::Type::tensor(DType::F32, vs)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.initializers["k"] = random_f32({2, 3, 6, 4}, 31);
  g.initializers["v"] = random_f32({2, 3, 6, 8}, 32);
  g.initializers["scale"] = f32(0.5f);
  ir::Node tr = node("Transpose", {"k"}, {"kt"}, 18);
  tr.attrs["perm"] = ir::Attribute::of_ints("perm", {0, 1, 3, 2});
  g.nodes.push_back(tr);
  g.nodes.push_back(node("MatMul", {"x", "kt"}, {"scores"}, 18));
  g.nodes.push_back(node("Mul", {"scale", "scores"}, {"scaled"}, 18));
  g.nodes.push_back(node("Softmax", {"scaled"}, {"p"}, 18));
  g.nodes.push_back(node("MatMul", {"p", "v"}, {"y"}, 18));
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {2, 3, 5, 4});
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].op_type, "Attention");
  EXPECT_FLOAT_EQ(opt.nodes[0].attr_float("scale", 0), 0.5f);
}

TEST(Fusion, BasicLevelDoesNotFuse) {
  ir::Graph g = erf_gelu_graph(true, 0);
  passes::optimize(g, OptimizationLevel::Basic);
  EXPECT_EQ(count_ops(g, "Gelu"), 0);
}

}  // namespace
}  // namespace kpt
