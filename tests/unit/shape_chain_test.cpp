// simplify_shape_chains: shape operands computed from the input's own dims become constants
// (0 = copy, -1 = inferred, 1 = keep for Expand, INT64_MAX for a whole-axis Slice end) only
// when symbolic shape analysis proves them, and the graph computes the same outputs.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "ir/graph.hpp"
#include "passes/pass_manager.hpp"
#include "passes/rewrite_util.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"
#include "tests/testing/pass_check.hpp"

namespace kpt {
namespace {

using testing::count_ops;

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), 17);
}

Tensor i64s(std::vector<int64_t> v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor random_f32(const Dims& dims, uint32_t seed) {
  Tensor t(DType::F32, dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// A graph with input x of the given dims (negative: symbols "N", "S") and output y.
ir::Graph graph_with_input(const std::vector<int64_t>& dims) {
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Shape s;
  const char* names[] = {"N", "S"};
  int sym = 0;
  for (auto d : dims) s.push_back(d >= 0 ? ir::Dim::of(d) : ir::Dim::sym(names[sym++]));
  g.inputs.push_back({"x", ir::Type::tensor(DType::F32, s)});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.initializers["zero"] = i64s({0});
  g.initializers["i0"] = Tensor::scalar<int64_t>(DType::I64, 0);
  g.initializers["i1"] = Tensor::scalar<int64_t>(DType::I64, 1);
  return g;
}

// dim_k = Unsqueeze(Gather(Shape(x), k)): one element of a computed shape.
std::string dim_of(ir::Graph& g, const std::string& x, int k) {
  const std::string shape = x + "_shape";
  bool has_shape = false;
  for (const auto& n : g.nodes) has_shape |= n.outputs[0] == shape;
  if (!has_shape) g.nodes.push_back(node("Shape", {x}, {shape}));
  const std::string idx = k == 0 ? "i0" : "i1";
  const std::string d = x + "_d" + std::to_string(k);
  g.nodes.push_back(node("Gather", {shape, idx}, {d + "_s"}));
  g.nodes.push_back(node("Unsqueeze", {d + "_s", "zero"}, {d}));
  return d;
}

const ir::Node& only(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return n;
  }
  throw std::runtime_error("no " + op + " node");
}

std::vector<int64_t> constant_of(const ir::Graph& g, const std::string& v) {
  const Tensor* t = passes::constant_initializer(g, v);
  return t ? t->to_i64_vector() : std::vector<int64_t>{};
}

ir::Graph optimize_and_compare(const ir::Graph& reference, const Dims& x_dims) {
  ir::Graph optimized = reference;
  passes::optimize(optimized, OptimizationLevel::Basic);
  Tensor x = random_f32(x_dims, 5);
  auto want = runtime::run_graph(reference, {Value::of(x)});
  auto got = runtime::run_graph(optimized, {Value::of(x)});
  EXPECT_EQ(want.size(), got.size());
  for (size_t o = 0; o < want.size() && o < got.size(); ++o) {
    EXPECT_EQ(want[o].tensor.dims(), got[o].tensor.dims());
    const Tensor& w = want[o].tensor;
    const Tensor& t = got[o].tensor;
    if (w.dims() != t.dims()) continue;
    for (int64_t i = 0; i < w.numel(); ++i) EXPECT_EQ(w.get_f64(i), t.get_f64(i)) << i;
  }
  return optimized;
}

TEST(ShapeChains, SplitHeadsReshapeGetsConstantTarget) {
  // x [N, S, 8] -> Reshape(x, [N, S, 2, 4]) with N and S read from x's shape.
  ir::Graph g = graph_with_input({-1, -1, 8});
  const std::string n = dim_of(g, "x", 0), s = dim_of(g, "x", 1);
  g.initializers["heads"] = i64s({2, 4});
  g.nodes.push_back(node("Concat", {n, s, "heads"}, {"target"}));
  g.nodes.back().attrs["axis"] = ir::Attribute::of_int("axis", 0);
  g.nodes.push_back(node("Reshape", {"x", "target"}, {"y"}));
  g.nodes.back().attrs["allowzero"] = ir::Attribute::of_int("allowzero", 1);
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {3, 5, 8});
  EXPECT_EQ(count_ops(opt, "Shape"), 0) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Concat"), 0) << ir::print(opt);
  const ir::Node& r = only(opt, "Reshape");
  EXPECT_EQ(constant_of(opt, r.inputs[1]), (std::vector<int64_t>{0, 0, 2, 4}));
  EXPECT_EQ(r.attr_int("allowzero", 0), 0);
}

TEST(ShapeChains, MergedDimBecomesMinusOne) {
  // x [N, S, 2, 4] -> Reshape(x, [N * S, 8]): the product is not a dim of x, so -1.
  ir::Graph g = graph_with_input({-1, -1, 2, 4});
  const std::string n = dim_of(g, "x", 0), s = dim_of(g, "x", 1);
  g.nodes.push_back(node("Mul", {n, s}, {"ns"}));
  g.initializers["eight"] = i64s({8});
  g.nodes.push_back(node("Concat", {"ns", "eight"}, {"target"}));
  g.nodes.back().attrs["axis"] = ir::Attribute::of_int("axis", 0);
  g.nodes.push_back(node("Reshape", {"x", "target"}, {"y"}));
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {3, 5, 2, 4});
  EXPECT_EQ(constant_of(opt, only(opt, "Reshape").inputs[1]), (std::vector<int64_t>{-1, 8}));
  EXPECT_EQ(count_ops(opt, "Shape"), 0) << ir::print(opt);
}

TEST(ShapeChains, TwoUnprovableDimsStayComputed) {
  // Reshape(x [N, S, 8], [S, N, 8]): neither dim is x's at its position; two -1 are not allowed.
  ir::Graph g = graph_with_input({-1, -1, 8});
  const std::string n = dim_of(g, "x", 0), s = dim_of(g, "x", 1);
  g.initializers["eight"] = i64s({8});
  g.nodes.push_back(node("Concat", {s, n, "eight"}, {"target"}));
  g.nodes.back().attrs["axis"] = ir::Attribute::of_int("axis", 0);
  g.nodes.push_back(node("Reshape", {"x", "target"}, {"y"}));
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {3, 5, 8});
  EXPECT_EQ(only(opt, "Reshape").inputs[1], "target") << ir::print(opt);
}

TEST(ShapeChains, ExpandKeepsProvenDimsWithOne) {
  // Expand(x [N, 1], [N, 6]) -> Expand(x, [1, 6]).
  ir::Graph g = graph_with_input({-1, 1});
  const std::string n = dim_of(g, "x", 0);
  g.initializers["six"] = i64s({6});
  g.nodes.push_back(node("Concat", {n, "six"}, {"target"}));
  g.nodes.back().attrs["axis"] = ir::Attribute::of_int("axis", 0);
  g.nodes.push_back(node("Expand", {"x", "target"}, {"y"}));
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {4, 1});
  EXPECT_EQ(constant_of(opt, only(opt, "Expand").inputs[1]), (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(count_ops(opt, "Shape"), 0) << ir::print(opt);
}

TEST(ShapeChains, SliceToTheWholeAxisEndsAtMax) {
  // Slice(x [N, S], starts [1], ends [S], axes [1]).
  ir::Graph g = graph_with_input({-1, -1});
  const std::string s = dim_of(g, "x", 1);
  g.initializers["one"] = i64s({1});
  g.nodes.push_back(node("Slice", {"x", "one", s, "one"}, {"y"}));
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, {3, 5});
  EXPECT_EQ(constant_of(opt, only(opt, "Slice").inputs[2]),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(count_ops(opt, "Shape"), 0) << ir::print(opt);
}

}  // namespace
}  // namespace kpt
