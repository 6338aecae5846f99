// Reference kernels of the fused ops (kpt.MatMulBiasAct, com.microsoft.SkipLayerNormalization,
// com.microsoft.SkipSimplifiedLayerNormalization), each checked against the composition of
// standard reference ops it replaces, on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "analysis/shape_inference.hpp"
#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"

namespace kpt {
namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
              int opset = 23, std::string domain = "") {
  return testing::make_node(std::move(op), std::move(in), std::move(out), opset, std::move(domain));
}

using testing::random_f32;

// Runs `nodes` with graph inputs `inputs` (in order) and returns the values named `outputs`.
std::vector<Tensor> run(std::vector<ir::Node> nodes, const Named& inputs,
                        const std::vector<std::string>& outputs) {
  ir::Graph g;
  g.opsets[""] = 23;
  std::vector<Value> values;
  for (const auto& [name, t] : inputs) {
    g.inputs.push_back({name, ir::Type::tensor(t.dtype())});
    values.push_back(Value::of(t));
  }
  for (const auto& o : outputs) g.outputs.push_back({o, ir::Type::tensor(DType::F32)});
  g.nodes = std::move(nodes);
  ir::sort_and_verify(g);
  std::vector<Tensor> result;
  for (auto& v : runtime::run_graph(g, values)) result.push_back(v.tensor);
  return result;
}

void expect_near(const Tensor& want, const Tensor& got, double tol, const std::string& what) {
  ASSERT_EQ(want.dims(), got.dims()) << what;
  ASSERT_EQ(want.dtype(), got.dtype()) << what;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const float a = want.data<float>()[i], b = got.data<float>()[i];
    ASSERT_NEAR(a, b, tol * (1 + std::abs(a))) << what << " element " << i;
  }
}

// The standard ops that compute `activation` of value `in` into `out`.
std::vector<ir::Node> activation_nodes(const std::string& activation, const std::string& in,
                                       const std::string& out) {
  if (activation.empty()) return {node("Identity", {in}, {out})};
  if (activation == "Gelu" || activation == "GeluTanh") {
    ir::Node n = node("Gelu", {in}, {out});
    n.attrs["approximate"] =
        ir::Attribute::of_string("approximate", activation == "Gelu" ? "none" : "tanh");
    return {n};
  }
  if (activation == "Silu")
    return {node("Sigmoid", {in}, {in + "_s"}), node("Mul", {in, in + "_s"}, {out})};
  return {node(activation, {in}, {out})};
}

struct MatMulCase {
  Dims a, b, c;  // c empty: no bias
  std::string activation;
};

void check_matmul_bias_act(const MatMulCase& mc) {
  SCOPED_TRACE("activation \"" + mc.activation + "\"");
  const bool bias = !mc.c.empty();
  Named inputs = {{"a", random_f32(mc.a, 1)}, {"b", random_f32(mc.b, 2)}};
  if (bias) inputs.push_back({"c", random_f32(mc.c, 3)});
  ir::Node fused = node("MatMulBiasAct", {"a", "b"}, {"y"}, 1, "kpt");
  if (bias) fused.inputs.push_back("c");
  fused.attrs["activation"] = ir::Attribute::of_string("activation", mc.activation);
  const auto got = run({fused}, inputs, {"y"});

  std::vector<ir::Node> composed = {node("MatMul", {"a", "b"}, {"mm"})};
  if (bias) composed.push_back(node("Add", {"mm", "c"}, {"z"}));
  for (auto& n : activation_nodes(mc.activation, bias ? "z" : "mm", "y")) composed.push_back(n);
  const auto want = run(composed, inputs, {"y"});
  expect_near(want[0], got[0], 1e-5, "y");
}

TEST(FusedOps, MatMulBiasActMatchesMatMulAddActivation) {
  for (const char* act : {"", "Relu", "Gelu", "GeluTanh", "Silu", "Sigmoid", "Tanh"})
    check_matmul_bias_act({{2, 3, 4}, {4, 5}, {5}, act});
}

TEST(FusedOps, MatMulBiasActShapes) {
  check_matmul_bias_act({{3, 4}, {4, 5}, {}, "Relu"});                  // no bias
  check_matmul_bias_act({{3, 4}, {2, 4, 5}, {1, 5}, ""});               // batched B, [1, N] bias
  check_matmul_bias_act({{2, 1, 3, 4}, {3, 4, 6}, {3, 1, 6}, "Silu"});  // broadcast batch
  check_matmul_bias_act({{4}, {4, 5}, {5}, "Tanh"});                    // 1-D A as MatMul
}

TEST(FusedOps, MatMulBiasActRejectsUnknownActivationAndGrowingBias) {
  Named inputs = {{"a", random_f32({3, 4}, 1)}, {"b", random_f32({4, 5}, 2)}};
  ir::Node n = node("MatMulBiasAct", {"a", "b"}, {"y"}, 1, "kpt");
  n.attrs["activation"] = ir::Attribute::of_string("activation", "Swish");
  EXPECT_THROW(run({n}, inputs, {"y"}), Error);

  inputs.push_back({"c", random_f32({2, 3, 5}, 3)});  // would make the result 3-D
  ir::Node grows = node("MatMulBiasAct", {"a", "b", "c"}, {"y"}, 1, "kpt");
  EXPECT_THROW(run({grows}, inputs, {"y"}), Error);
}

TEST(FusedOps, MatMulBiasActInfersTheMatMulShape) {
  ir::Graph g;
  g.opsets[""] = 23;
  g.inputs.push_back(
      {"a", ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::sym("batch"), ir::Dim::sym("seq"),
                                                   ir::Dim::of(4)})});
  g.initializers["b"] = random_f32({4, 6}, 2);
  g.initializers["c"] = random_f32({6}, 3);
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.nodes.push_back(node("MatMulBiasAct", {"a", "b", "c"}, {"y"}, 1, "kpt"));
  analysis::infer_shapes(g);
  const ir::Type* t = g.type_of("y");
  ASSERT_TRUE(t && t->shape);
  EXPECT_EQ(*t->shape, (ir::Shape{ir::Dim::sym("batch"), ir::Dim::sym("seq"), ir::Dim::of(6)}));
  EXPECT_EQ(t->elem, DType::F32);
}

// SkipLayerNormalization against Add (+ bias Add) + LayerNormalization, every output.
void check_skip_layer_norm(const Dims& skip_dims, bool beta, bool bias) {
  SCOPED_TRACE("skip " + dims_to_string(skip_dims) + (beta ? " beta" : "") + (bias ? " bias" : ""));
  const Dims x_dims = {2, 3, 8};
  Named inputs = {{"x", random_f32(x_dims, 1)},
                  {"skip", random_f32(skip_dims, 2)},
                  {"gamma", random_f32({8}, 3)}};
  ir::Node fused = node("SkipLayerNormalization", {"x", "skip", "gamma"},
                        {"y", "mean", "inv", "sum"}, 1, "com.microsoft");
  fused.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-3f);
  if (beta) inputs.push_back({"beta", random_f32({8}, 4)});
  fused.inputs.push_back(beta ? "beta" : "");
  if (bias) {
    inputs.push_back({"bias", random_f32({8}, 5)});
    fused.inputs.push_back("bias");
  }
  const auto got = run({fused}, inputs, {"y", "mean", "inv", "sum"});

  std::vector<ir::Node> composed = {node("Add", {"x", "skip"}, {bias ? "xs" : "sum"})};
  if (bias) composed.push_back(node("Add", {"xs", "bias"}, {"sum"}));
  ir::Node ln = node("LayerNormalization", {"sum", "gamma"}, {"y", "mean", "inv"});
  if (beta) ln.inputs.push_back("beta");
  ln.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-3f);
  composed.push_back(ln);
  const auto want = run(composed, inputs, {"y", "mean", "inv", "sum"});
  const char* names[] = {"output", "mean", "inv_std_var", "input_skip_bias_sum"};
  for (size_t o = 0; o < 4; ++o) expect_near(want[o], got[o], 1e-5, names[o]);
}

TEST(FusedOps, SkipLayerNormalizationMatchesAddAndLayerNorm) {
  check_skip_layer_norm({2, 3, 8}, true, true);
  check_skip_layer_norm({2, 3, 8}, false, false);
  check_skip_layer_norm({3, 8}, true, false);  // skip broadcast over the batch
}

TEST(FusedOps, SkipSimplifiedLayerNormalizationMatchesAddAndRmsNorm) {
  for (bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "bias" : "no bias");
    Named inputs = {{"x", random_f32({2, 3, 8}, 1)},
                    {"skip", random_f32({2, 3, 8}, 2)},
                    {"gamma", random_f32({8}, 3)}};
    ir::Node fused = node("SkipSimplifiedLayerNormalization", {"x", "skip", "gamma"},
                          {"y", "", "inv", "sum"}, 1, "com.microsoft");
    fused.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-5f);
    if (bias) {
      inputs.push_back({"bias", random_f32({8}, 5)});
      fused.inputs.push_back("bias");
    }
    const auto got = run({fused}, inputs, {"y", "inv", "sum"});

    // inv_std_var = 1 / sqrt(mean(sum^2) + eps), spelled out in standard ops.
    std::vector<ir::Node> composed = {node("Add", {"x", "skip"}, {bias ? "xs" : "sum"})};
    if (bias) composed.push_back(node("Add", {"xs", "bias"}, {"sum"}));
    ir::Node rms = node("RMSNormalization", {"sum", "gamma"}, {"y"});
    rms.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-5f);
    composed.push_back(rms);
    composed.push_back(node("Mul", {"sum", "sum"}, {"sq"}));
    ir::Node mean = node("ReduceMean", {"sq"}, {"ms"}, 17);
    mean.attrs["axes"] = ir::Attribute::of_ints("axes", {-1});
    composed.push_back(mean);
    composed.push_back(node("Add", {"ms", "eps"}, {"mse"}));
    composed.push_back(node("Sqrt", {"mse"}, {"rms"}));
    composed.push_back(node("Reciprocal", {"rms"}, {"inv"}));
    Named with_eps = inputs;
    with_eps.push_back({"eps", Tensor::scalar<float>(DType::F32, 1e-5f)});
    const auto want = run(composed, with_eps, {"y", "inv", "sum"});
    const char* names[] = {"output", "inv_std_var", "input_skip_bias_sum"};
    for (size_t o = 0; o < 3; ++o) expect_near(want[o], got[o], 1e-5, names[o]);
  }
}

TEST(FusedOps, SkipLayerNormalizationRejectsMismatchedGamma) {
  Named inputs = {
      {"x", random_f32({2, 8}, 1)}, {"skip", random_f32({2, 8}, 2)}, {"gamma", random_f32({4}, 3)}};
  EXPECT_THROW(
      run({node("SkipLayerNormalization", {"x", "skip", "gamma"}, {"y"}, 1, "com.microsoft")},
          inputs, {"y"}),
      Error);
}

TEST(FusedOps, SkipLayerNormalizationInfersStatsShape) {
  ir::Graph g;
  g.opsets[""] = 23;
  const ir::Shape x{ir::Dim::sym("batch"), ir::Dim::of(8)};
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, x)});
  g.inputs.push_back({"skip", ir::Type::tensor(DType::F32, x)});
  g.initializers["gamma"] = random_f32({8}, 3);
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.outputs.push_back({"sum", ir::Type::tensor(DType::F32)});
  g.nodes.push_back(node("SkipSimplifiedLayerNormalization", {"x", "skip", "gamma"},
                         {"y", "", "inv", "sum"}, 1, "com.microsoft"));
  g.outputs.push_back({"inv", ir::Type::tensor(DType::F32)});
  analysis::infer_shapes(g);
  ASSERT_TRUE(g.type_of("y") && g.type_of("y")->shape);
  EXPECT_EQ(*g.type_of("y")->shape, x);
  EXPECT_EQ(*g.type_of("sum")->shape, x);
  EXPECT_EQ(*g.type_of("inv")->shape, (ir::Shape{ir::Dim::sym("batch"), ir::Dim::of(1)}));
}

}  // namespace
}  // namespace kpt
