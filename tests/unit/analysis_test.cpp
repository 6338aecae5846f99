#include <gtest/gtest.h>

#include <filesystem>
#include <variant>

#include "analysis/bind_shapes.hpp"
#include "analysis/flops.hpp"
#include "analysis/load_for_analysis.hpp"
#include "analysis/shape_inference.hpp"
#include "analysis/symbolic_dim.hpp"
#include "kpt/error.hpp"

namespace kpt::analysis {
namespace {

constexpr int kOpset = 18;

ir::Shape shape(std::initializer_list<std::variant<int64_t, const char*>> dims) {
  ir::Shape s;
  for (const auto& d : dims) {
    if (std::holds_alternative<int64_t>(d)) {
      s.push_back(ir::Dim::of(std::get<int64_t>(d)));
    } else {
      s.push_back(ir::Dim::sym(std::get<const char*>(d)));
    }
  }
  return s;
}

ir::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
              std::vector<ir::Attribute> attrs = {}) {
  ir::Node n;
  n.name = out.empty() ? op : out[0];
  n.op_type = op;
  n.opset = kOpset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  for (auto& a : attrs) n.attrs[a.name] = a;
  return n;
}

Tensor i64s(std::vector<int64_t> v, bool scalar = false) {
  Tensor t(DType::I64, scalar ? Dims{} : Dims{static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

ir::Graph graph_with_input(const std::string& name, DType dtype, ir::Shape s) {
  ir::Graph g;
  g.opsets[""] = kOpset;
  g.inputs.push_back({name, ir::Type::tensor(dtype, std::move(s))});
  return g;
}

std::string type_string(const ir::Graph& g, const std::string& value) {
  const ir::Type* t = g.type_of(value);
  return t ? t->to_string() : "(none)";
}

TEST(SymbolicDim, ProductsCancel) {
  const ir::Dim bs = dim_mul(ir::Dim::sym("batch"), ir::Dim::sym("seq"));
  EXPECT_EQ(bs.symbol, "batch*seq");
  EXPECT_EQ(dim_div(bs, ir::Dim::sym("seq")).symbol, "batch");
  EXPECT_EQ(dim_div(dim_mul(bs, ir::Dim::of(768)), ir::Dim::of(12)).symbol, "64*batch*seq");
  EXPECT_EQ(dim_mul(ir::Dim::of(3), ir::Dim::of(4)).value, 12);
  EXPECT_FALSE(dim_mul(ir::Dim{}, ir::Dim::sym("seq")).known());
  EXPECT_EQ(dim_int(int_dim(-1)), -1);
  EXPECT_EQ(shape_to_string(broadcast_shapes(shape({"batch", 1, "seq"}), shape({4, 1}))),
            "[batch,4,seq]");
}

TEST(ShapeInference, MatMulKeepsSymbolicBatch) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({"batch", "seq", 64}));
  g.initializers["w"] = Tensor(DType::F32, {64, 32});
  g.initializers["b"] = Tensor(DType::F32, {32});
  g.nodes.push_back(node("MatMul", {"x", "w"}, {"xw"}));
  g.nodes.push_back(node("Add", {"xw", "b"}, {"y"}));
  g.nodes.push_back(node("Softmax", {"y"}, {"p"}));
  infer_shapes(g);
  EXPECT_EQ(type_string(g, "xw"), "f32[batch,seq,32]");
  EXPECT_EQ(type_string(g, "p"), "f32[batch,seq,32]");
}

// The exporter's head split: Reshape(x, Concat(Gather(Shape(x), 0), Gather(Shape(x), 1),
// [12], [64])), then Reshape(x, [-1, 768]).
TEST(ShapeInference, ResolvesShapeGatherConcatReshapeChains) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({"batch", "seq", 768}));
  g.initializers["zero"] = i64s({0}, true);
  g.initializers["one"] = i64s({1}, true);
  g.initializers["axes0"] = i64s({0});
  g.initializers["heads"] = i64s({12});
  g.initializers["head_dim"] = i64s({64});
  g.initializers["flat"] = i64s({-1, 768});
  g.nodes.push_back(node("Shape", {"x"}, {"s"}));
  g.nodes.push_back(node("Gather", {"s", "zero"}, {"b"}, {ir::Attribute::of_int("axis", 0)}));
  g.nodes.push_back(node("Gather", {"s", "one"}, {"n"}, {ir::Attribute::of_int("axis", 0)}));
  g.nodes.push_back(node("Unsqueeze", {"b", "axes0"}, {"b1"}));
  g.nodes.push_back(node("Unsqueeze", {"n", "axes0"}, {"n1"}));
  g.nodes.push_back(node("Concat", {"b1", "n1", "heads", "head_dim"}, {"target"},
                         {ir::Attribute::of_int("axis", 0)}));
  g.nodes.push_back(node("Reshape", {"x", "target"}, {"heads4d"}));
  g.nodes.push_back(
      node("Transpose", {"heads4d"}, {"t"}, {ir::Attribute::of_ints("perm", {0, 2, 1, 3})}));
  g.nodes.push_back(node("Reshape", {"x", "flat"}, {"rows"}));
  infer_shapes(g);
  EXPECT_EQ(type_string(g, "s"), "i64[3]");
  EXPECT_EQ(type_string(g, "b"), "i64[]");
  EXPECT_EQ(type_string(g, "target"), "i64[4]");
  EXPECT_EQ(type_string(g, "heads4d"), "f32[batch,seq,12,64]");
  EXPECT_EQ(type_string(g, "t"), "f32[batch,12,seq,64]");
  EXPECT_EQ(type_string(g, "rows"), "f32[batch*seq,768]");
}

TEST(ShapeInference, StaticShapesBecomeConstants) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({2, 3, 4}));
  g.initializers["minus_one"] = i64s({-1});
  g.nodes.push_back(node("Shape", {"x"}, {"s"}, {ir::Attribute::of_int("start", 1)}));
  g.nodes.push_back(
      node("Concat", {"minus_one", "s"}, {"target"}, {ir::Attribute::of_int("axis", 0)}));
  g.nodes.push_back(node("Reshape", {"x", "target"}, {"y"}));
  g.nodes.push_back(node("ConstantOfShape", {"s"}, {"zeros"}));
  auto summary = infer_shapes(g, InferenceOptions{});
  EXPECT_EQ(type_string(g, "s"), "i64[2]");
  EXPECT_EQ(type_string(g, "y"), "f32[2,3,4]");
  EXPECT_EQ(type_string(g, "zeros"), "f32[3,4]");
  EXPECT_EQ(summary.outputs_fully_static, summary.outputs_typed);
}

TEST(ShapeInference, UnknownOpLeavesOnlyItsDependentsUnknown) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({"batch", 8}));
  ir::Node custom = node("Frobnicate", {"x"}, {"f"});
  custom.domain = "com.example";
  g.nodes.push_back(custom);
  g.nodes.push_back(node("Relu", {"f"}, {"r"}));
  g.nodes.push_back(node("Relu", {"x"}, {"ok"}));
  auto summary = infer_shapes(g, InferenceOptions{});
  EXPECT_EQ(g.type_of("f"), nullptr);
  EXPECT_EQ(type_string(g, "ok"), "f32[batch,8]");
  EXPECT_EQ(summary.ops_without_inference.at("com.example.Frobnicate"), 1);
}

TEST(ShapeInference, ConvAndPoolGeometry) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({"n", 3, 224, 224}));
  g.initializers["w"] = Tensor(DType::F32, {64, 3, 7, 7});
  g.nodes.push_back(node(
      "Conv", {"x", "w"}, {"c"},
      {ir::Attribute::of_ints("strides", {2, 2}), ir::Attribute::of_ints("pads", {3, 3, 3, 3})}));
  g.nodes.push_back(node(
      "MaxPool", {"c"}, {"p"},
      {ir::Attribute::of_ints("kernel_shape", {3, 3}), ir::Attribute::of_ints("strides", {2, 2}),
       ir::Attribute::of_ints("pads", {1, 1, 1, 1})}));
  g.nodes.push_back(node("GlobalAveragePool", {"p"}, {"gap"}));
  g.nodes.push_back(node("Flatten", {"gap"}, {"flat"}));
  infer_shapes(g);
  EXPECT_EQ(type_string(g, "c"), "f32[n,64,112,112]");
  EXPECT_EQ(type_string(g, "p"), "f32[n,64,56,56]");
  EXPECT_EQ(type_string(g, "flat"), "f32[n,64]");
}

TEST(Flops, MatMulIsTwoMNKPerBatch) {
  ir::Graph g = graph_with_input("a", DType::F32, shape({2, 4, 8}));
  g.initializers["b"] = Tensor(DType::F32, {8, 16});
  g.nodes.push_back(node("MatMul", {"a", "b"}, {"c"}));
  g.nodes.push_back(node("Relu", {"c"}, {"r"}));
  g.nodes.push_back(node("Reshape", {"r", "shape"}, {"flat"}));
  g.initializers["shape"] = i64s({-1});
  infer_shapes(g);
  EXPECT_EQ(node_flops(g, g.nodes[0]), 2.0 * 2 * 4 * 16 * 8);
  FlopCount c = count_flops(g);
  EXPECT_EQ(c.total, 2.0 * 2 * 4 * 16 * 8 + 2 * 4 * 16);  // plus one per Relu output
  EXPECT_EQ(c.nodes_counted, 3);
  ParameterCount p = count_parameters(g);
  EXPECT_EQ(p.elements, 8 * 16 + 1);
  EXPECT_EQ(p.bytes, 8 * 16 * 4 + 8);
}

TEST(Flops, ConvCountsKernelWindowPerOutput) {
  ir::Graph g = graph_with_input("x", DType::F32, shape({1, 3, 224, 224}));
  g.initializers["w"] = Tensor(DType::F32, {64, 3, 7, 7});
  g.nodes.push_back(node(
      "Conv", {"x", "w"}, {"c"},
      {ir::Attribute::of_ints("strides", {2, 2}), ir::Attribute::of_ints("pads", {3, 3, 3, 3})}));
  infer_shapes(g);
  EXPECT_EQ(node_flops(g, g.nodes[0]), 2.0 * 64 * 112 * 112 * 3 * 7 * 7);
}

TEST(BindShapes, SymbolsSpreadAcrossInputs) {
  ir::Graph g = graph_with_input("ids", DType::I64, shape({"batch", "seq"}));
  g.inputs.push_back({"mask", ir::Type::tensor(DType::I64, shape({"batch", "seq"}))});
  auto symbols = bind_input_shapes(g, {{"ids", {2, 16}}});
  EXPECT_EQ(symbols.at("seq"), 16);
  EXPECT_EQ(ir::shape_to_string(*g.inputs[1].type.shape), "[2,16]");
  EXPECT_THROW(bind_input_shapes(g, {{"nope", {1}}}), Error);
}

// The DistilBERT skeleton from the dynamo exporter, its declared value_info removed so that
// every type comes from inference.
TEST(ShapeInference, DistilBertSkeletonOutputIsBatchSeqHidden) {
  const auto path = std::filesystem::path(__FILE__).parent_path() /
                    "../../../shared/models/distilbert_base.skeleton.onnx";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not present";
  AnalysisModel m = load_for_analysis(path.string());
  EXPECT_FALSE(m.stripped.empty());
  ir::Graph& g = m.model.graph;
  std::map<std::string, ir::Type> stripped_types;
  for (const auto& w : m.stripped) stripped_types[w.name] = g.value_types.at(w.name);
  g.value_types = stripped_types;
  for (auto& o : g.outputs) o.type = ir::Type{};
  auto summary = infer_shapes(g, InferenceOptions{});
  EXPECT_EQ(summary.outputs_typed, summary.nodes) << "every node has one output here";
  EXPECT_EQ(type_string(g, g.outputs[0].name), "f32[batch,seq,768]");
}

}  // namespace
}  // namespace kpt::analysis
