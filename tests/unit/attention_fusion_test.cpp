// Attention fusion on the shapes exporters give attention: masks (additive padding, GPT-2's
// Where over a sliced tril buffer, the dynamo exporter's bool masks and NaN guard, Range
// comparisons), the dynamo exporter's Kᵀ reshape chain and scaling of Q and K, and
// grouped-query K/V repetition. Each test checks the fused graph's outputs against the
// unfused graph's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "runtime/random_inputs.hpp"
#include "tests/testing/ir_builders.hpp"
#include "tests/testing/pass_check.hpp"

namespace kpt {
namespace {

using testing::count_ops;

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
              int opset = 17) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), opset);
}

ir::Shape shape(const Dims& d) {
  ir::Shape s;
  for (auto v : d) s.push_back(ir::Dim::of(v));
  return s;
}

Tensor random_f32(const Dims& dims, uint32_t seed) {
  Tensor t(DType::F32, dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Tensor f32(float v) {
  return Tensor::scalar<float>(DType::F32, v);
}

Tensor i64s(std::vector<int64_t> v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor i64(int64_t v) {
  return Tensor::scalar<int64_t>(DType::I64, v);
}

// A bool [1, 1, n, n] lower-triangular matrix (GPT-2's "bias" buffer).
Tensor tril(int64_t n) {
  Tensor t(DType::Bool, {1, 1, n, n});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t.data<uint8_t>()[i * n + j] = j <= i;
  return t;
}

const ir::Node* find(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

// Graph with inputs q [b, h, s, d], k and v [b, kv, s, d] and output y.
ir::Graph qkv_graph(Dims q, Dims kv) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back({"q", ir::Type::tensor(DType::F32, shape(q))});
  g.inputs.push_back({"k", ir::Type::tensor(DType::F32, shape(kv))});
  g.inputs.push_back({"v", ir::Type::tensor(DType::F32, shape(kv))});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  return g;
}

// Optimizes a copy at Extended and checks its outputs against the original's.
ir::Graph optimize_and_compare(const ir::Graph& reference, const std::vector<Value>& inputs) {
  ir::Graph optimized = reference;
  passes::optimize(optimized, OptimizationLevel::Extended);
  testing::expect_outputs_close(runtime::run_graph(reference, inputs),
                                runtime::run_graph(optimized, inputs), 1e-5);
  return optimized;
}

std::vector<Value> qkv_inputs(const Dims& q, const Dims& kv) {
  return {Value::of(random_f32(q, 1)), Value::of(random_f32(kv, 2)), Value::of(random_f32(kv, 3))};
}

// Q·Kᵀ with Kᵀ as Transpose(k, [0, 1, 3, 2]) and the scores divided by sqrt(d) = 2.
void scores(ir::Graph& g, const std::string& k = "k") {
  ir::Node tr = node("Transpose", {k}, {"kt"});
  tr.attrs["perm"] = ir::Attribute::of_ints("perm", {0, 1, 3, 2});
  g.nodes.push_back(tr);
  g.initializers["sqrt_d"] = f32(2);
  g.nodes.push_back(node("MatMul", {"q", "kt"}, {"qk"}));
  g.nodes.push_back(node("Div", {"qk", "sqrt_d"}, {"scores"}));
}

void softmax_pv(ir::Graph& g, const std::string& in, const std::string& v = "v") {
  g.nodes.push_back(node("Softmax", {in}, {"p"}));
  g.nodes.push_back(node("MatMul", {"p", v}, {"y"}));
}

TEST(AttentionFusion, AdditivePaddingMaskBecomesAttnMask) {
  ir::Graph g = qkv_graph({2, 3, 5, 4}, {2, 3, 5, 4});
  g.inputs.push_back({"mask", ir::Type::tensor(DType::F32, shape({2, 1, 1, 5}))});
  scores(g);
  g.nodes.push_back(node("Add", {"scores", "mask"}, {"masked"}));
  softmax_pv(g, "masked");
  ir::sort_and_verify(g);
  Tensor mask(DType::F32, {2, 1, 1, 5});
  float* m = mask.data<float>();
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = i >= 8 ? -10000.0f : 0.0f;  // row 1 padded
  auto in = qkv_inputs({2, 3, 5, 4}, {2, 3, 5, 4});
  in.push_back(Value::of(mask));
  ir::Graph opt = optimize_and_compare(g, in);
  const ir::Node* att = find(opt, "Attention");
  ASSERT_NE(att, nullptr) << ir::print(opt);
  ASSERT_EQ(att->inputs.size(), 4u);
  EXPECT_EQ(att->inputs[3], "mask");
  EXPECT_FLOAT_EQ(att->attr_float("scale", 0), 0.5f);
  EXPECT_EQ(att->attr_int("is_causal", 0), 0);
}

// GPT-2: Where(bias[:, :, k_len - q_len:k_len, :k_len], scores, finfo.min).
ir::Graph gpt2_graph(int64_t row_start) {
  ir::Graph g = qkv_graph({1, 2, 5, 4}, {1, 2, 5, 4});
  scores(g);
  g.initializers["bias"] = tril(8);
  g.initializers["rows_from"] = i64s({row_start});
  g.initializers["rows_to"] = i64s({row_start + 5});
  g.initializers["cols_from"] = i64s({0});
  g.initializers["cols_to"] = i64s({5});
  g.initializers["axis2"] = i64s({2});
  g.initializers["axis3"] = i64s({3});
  g.initializers["min"] = f32(std::numeric_limits<float>::lowest());
  g.nodes.push_back(node("Slice", {"bias", "rows_from", "rows_to", "axis2"}, {"rows"}));
  g.nodes.push_back(node("Slice", {"rows", "cols_from", "cols_to", "axis3"}, {"causal"}));
  g.nodes.push_back(node("Where", {"causal", "scores", "min"}, {"masked"}));
  softmax_pv(g, "masked");
  ir::sort_and_verify(g);
  return g;
}

TEST(AttentionFusion, SlicedTrilBufferBecomesIsCausal) {
  ir::Graph opt = optimize_and_compare(gpt2_graph(0), qkv_inputs({1, 2, 5, 4}, {1, 2, 5, 4}));
  const ir::Node* att = find(opt, "Attention");
  ASSERT_NE(att, nullptr) << ir::print(opt);
  EXPECT_EQ(att->attr_int("is_causal", 0), 1);
  EXPECT_EQ(att->inputs.size(), 3u) << ir::print(opt);
}

TEST(AttentionFusion, ShiftedTrilSliceStaysAMask) {
  // Rows 1..5 of the triangle against columns 0..4: one more key visible per row, not causal.
  ir::Graph opt = optimize_and_compare(gpt2_graph(1), qkv_inputs({1, 2, 5, 4}, {1, 2, 5, 4}));
  const ir::Node* att = find(opt, "Attention");
  ASSERT_NE(att, nullptr) << ir::print(opt);
  EXPECT_EQ(att->attr_int("is_causal", 0), 0);
  EXPECT_EQ(att->inputs.size(), 4u) << ir::print(opt);
}

// The dynamo exporter: Q and Kᵀ each scaled by sqrt(scale), Kᵀ through Reshape/Transpose/
// Reshape, a bool mask as Where(keep, 0, -inf) added, and Where(IsNaN(p), 0, p) after Softmax.
TEST(AttentionFusion, DynamoDecompositionWithGuardAndBoolMask) {
  ir::Graph g = qkv_graph({1, 2, 5, 4}, {1, 2, 5, 4});
  g.inputs.push_back({"keep", ir::Type::tensor(DType::Bool, shape({1, 1, 5, 5}))});
  g.initializers["flat"] = i64s({-1, 5, 4});
  g.initializers["kt_shape"] = i64s({1, 2, 4, 5});
  g.initializers["root_scale"] = f32(std::sqrt(0.5f));
  g.initializers["zero"] = f32(0);
  g.initializers["ninf"] = f32(-std::numeric_limits<float>::infinity());
  g.nodes.push_back(node("Reshape", {"k", "flat"}, {"k3"}));
  ir::Node tr = node("Transpose", {"k3"}, {"k3t"});
  tr.attrs["perm"] = ir::Attribute::of_ints("perm", {0, 2, 1});
  g.nodes.push_back(tr);
  g.nodes.push_back(node("Reshape", {"k3t", "kt_shape"}, {"kt"}));
  g.nodes.push_back(node("Mul", {"q", "root_scale"}, {"qs"}));
  g.nodes.push_back(node("Mul", {"kt", "root_scale"}, {"kts"}));
  g.nodes.push_back(node("Where", {"keep", "zero", "ninf"}, {"bias"}));
  g.nodes.push_back(node("MatMul", {"qs", "kts"}, {"qk"}));
  g.nodes.push_back(node("Add", {"qk", "bias"}, {"masked"}));
  g.nodes.push_back(node("Softmax", {"masked"}, {"p"}));
  g.nodes.push_back(node("IsNaN", {"p"}, {"nan"}));
  g.nodes.push_back(node("Where", {"nan", "zero", "p"}, {"guarded"}));
  g.nodes.push_back(node("MatMul", {"guarded", "v"}, {"y"}));
  ir::sort_and_verify(g);
  Tensor keep(DType::Bool, {1, 1, 5, 5});
  for (int i = 0; i < 25; ++i) keep.data<uint8_t>()[i] = (i % 3) != 0;
  for (int j = 0; j < 5; ++j) keep.data<uint8_t>()[2 * 5 + j] = 0;  // row 2 fully masked
  auto in = qkv_inputs({1, 2, 5, 4}, {1, 2, 5, 4});
  in.push_back(Value::of(keep));
  ir::Graph opt = optimize_and_compare(g, in);
  const ir::Node* att = find(opt, "Attention");
  ASSERT_NE(att, nullptr) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "IsNaN"), 0) << ir::print(opt);
  ASSERT_EQ(att->inputs.size(), 4u);
  EXPECT_EQ(att->inputs[1], "k");
  EXPECT_EQ(att->inputs[3], "keep");
  EXPECT_NEAR(att->attr_float("scale", 0), 0.5f, 1e-6);
}

// Llama: repeat_kv (Unsqueeze/Expand/Reshape) on K and V, and a causal mask from Range
// comparisons And-ed with a padding mask.
TEST(AttentionFusion, GroupedQueryWithRangeCausalMask) {
  ir::Graph g = qkv_graph({1, 4, 5, 4}, {1, 2, 5, 4});
  g.inputs.push_back({"pad", ir::Type::tensor(DType::Bool, shape({1, 1, 1, 5}))});
  g.initializers["axis2"] = i64s({2});
  g.initializers["rep5"] = i64s({1, 2, 2, 5, 4});
  g.initializers["rep4"] = i64s({1, 4, 5, 4});
  for (const std::string x : {"k", "v"}) {
    g.nodes.push_back(node("Unsqueeze", {x, "axis2"}, {x + "5"}));
    g.nodes.push_back(node("Expand", {x + "5", "rep5"}, {x + "e"}));
    g.nodes.push_back(node("Reshape", {x + "e", "rep4"}, {x + "r"}));
  }
  scores(g, "kr");
  g.initializers["start"] = i64(0);
  g.initializers["limit"] = i64(5);
  g.initializers["step"] = i64(1);
  g.initializers["axes01"] = i64s({0, 1});
  g.initializers["axes012"] = i64s({0, 1, 2});
  g.initializers["axis3"] = i64s({3});
  g.initializers["min"] = f32(std::numeric_limits<float>::lowest());
  g.nodes.push_back(node("Range", {"start", "limit", "step"}, {"idx"}));
  g.nodes.push_back(node("Unsqueeze", {"idx", "axes012"}, {"kv_idx"}));  // [1, 1, 1, 5]
  g.nodes.push_back(node("Unsqueeze", {"idx", "axes01"}, {"q_idx0"}));   // [1, 1, 5]
  g.nodes.push_back(node("Unsqueeze", {"q_idx0", "axis3"}, {"q_idx"}));  // [1, 1, 5, 1]
  g.nodes.push_back(node("LessOrEqual", {"kv_idx", "q_idx"}, {"causal"}));
  g.nodes.push_back(node("And", {"causal", "pad"}, {"keep"}));
  g.nodes.push_back(node("Where", {"keep", "scores", "min"}, {"masked"}));
  softmax_pv(g, "masked", "vr");
  ir::sort_and_verify(g);
  Tensor pad(DType::Bool, {1, 1, 1, 5});
  for (int j = 0; j < 5; ++j) pad.data<uint8_t>()[j] = j != 3;
  auto in = qkv_inputs({1, 4, 5, 4}, {1, 2, 5, 4});
  in.push_back(Value::of(pad));
  ir::Graph opt = optimize_and_compare(g, in);
  const ir::Node* att = find(opt, "Attention");
  ASSERT_NE(att, nullptr) << ir::print(opt);
  EXPECT_EQ(att->attr_int("is_causal", 0), 1);
  EXPECT_EQ(att->inputs[1], "k");  // two kv heads for four query heads
  EXPECT_EQ(att->inputs[2], "v");
  ASSERT_EQ(att->inputs.size(), 4u);
  EXPECT_EQ(att->inputs[3], "pad");
  EXPECT_EQ(count_ops(opt, "Expand"), 0) << ir::print(opt);
}

TEST(AttentionFusion, MaskThatKeepsEverythingIsDropped) {
  ir::Graph g = qkv_graph({2, 3, 5, 4}, {2, 3, 5, 4});
  scores(g);
  Tensor all(DType::Bool, {1, 1, 5, 1});
  for (int i = 0; i < 5; ++i) all.data<uint8_t>()[i] = 1;
  g.initializers["ones"] = all;
  g.initializers["full"] = i64s({2, 1, 5, 5});
  g.initializers["zero"] = f32(0);
  g.initializers["ninf"] = f32(-std::numeric_limits<float>::infinity());
  g.nodes.push_back(node("Expand", {"ones", "full"}, {"keep"}));
  g.nodes.push_back(node("Where", {"keep", "zero", "ninf"}, {"bias"}));
  g.nodes.push_back(node("Add", {"scores", "bias"}, {"masked"}));
  softmax_pv(g, "masked");
  ir::sort_and_verify(g);
  ir::Graph opt = optimize_and_compare(g, qkv_inputs({2, 3, 5, 4}, {2, 3, 5, 4}));
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(find(opt, "Attention")->inputs.size(), 3u);
}

TEST(AttentionFusion, MaskWiderThanScoresIsNotFused) {
  // The mask broadcasts the scores up to [2, 3, 5, 5]: Attention cannot produce that shape.
  ir::Graph g = qkv_graph({1, 3, 5, 4}, {1, 3, 5, 4});
  g.inputs.push_back({"mask", ir::Type::tensor(DType::F32, shape({2, 1, 5, 5}))});
  scores(g);
  g.nodes.push_back(node("Add", {"scores", "mask"}, {"masked"}));
  softmax_pv(g, "masked");
  ir::sort_and_verify(g);
  auto in = qkv_inputs({1, 3, 5, 4}, {1, 3, 5, 4});
  in.push_back(Value::of(random_f32({2, 1, 5, 5}, 9)));
  ir::Graph opt = optimize_and_compare(g, in);
  EXPECT_EQ(count_ops(opt, "Attention"), 0) << ir::print(opt);
}

// Whole exported models, opt-in: KPT_EQUIVALENCE_MODELS=a.onnx:b.onnx runs each with every pass
// and with none on the same inputs (batch 2, other dims 16, the second row of an
// attention_mask right-padded by 4) and compares the outputs.
TEST(AttentionFusion, WholeModelsMatchUnoptimized) {
  const char* list = std::getenv("KPT_EQUIVALENCE_MODELS");
  if (!list) GTEST_SKIP() << "set KPT_EQUIVALENCE_MODELS to a ':'-separated list of models";
  std::stringstream paths(list);
  for (std::string path; std::getline(paths, path, ':');) {
    SCOPED_TRACE(path);
    SessionOptions none;
    none.optimization = OptimizationLevel::None;
    Session plain = Session::open(path, none);
    Session optimized = Session::open(path);
    std::map<std::string, Value> inputs;
    uint64_t seed = 1;
    for (const auto& info : plain.inputs()) {
      std::map<std::string, int64_t> dims;
      for (const auto& sym : info.symbols)
        dims[sym] = sym.find("batch") != std::string::npos ? 2 : 16;
      Tensor t = runtime::random_input(info, dims, seed++);
      if (info.name.find("mask") != std::string::npos && t.rank() == 2 && t.dim(0) >= 2) {
        for (int64_t j = t.dim(1) - 4; j < t.dim(1); ++j) t.data<int64_t>()[t.dim(1) + j] = 0;
      }
      inputs[info.name] = Value::of(t);
    }
    std::cout << path << ": " << plain.graph().nodes.size() << " nodes unoptimized, "
              << optimized.graph().nodes.size() << " optimized\n";
    auto want = plain.run(inputs);
    auto got = optimized.run(inputs);
    ASSERT_EQ(want.size(), got.size());
    for (size_t o = 0; o < want.size(); ++o) {
      const Tensor& w = want[o].tensor;
      const Tensor& t = got[o].tensor;
      ASSERT_EQ(w.dims(), t.dims());
      double worst = 0;
      int64_t differ = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double a = w.get_f64(i), b = t.get_f64(i);
        const double e = std::abs(a - b) / (1e-4 + 1e-3 * std::abs(a));
        worst = std::isnan(e) ? INFINITY : std::max(worst, e);
        differ += a != b;
      }
      std::cout << differ << " of " << w.numel() << " elements differ\n";
      EXPECT_LE(worst, 1.0) << "output " << o << " differs beyond rtol 1e-3, atol 1e-4";
      std::cout << path << " output " << o << " " << t.describe() << ": first " << w.get_f64(0)
                << " vs " << t.get_f64(0) << ", worst error / tolerance " << worst << "\n";
    }
  }
}

}  // namespace
}  // namespace kpt
