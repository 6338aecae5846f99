// ONNX Runtime's com.microsoft MultiHeadAttention and RotaryEmbedding: their reference kernels
// (src/ops/fused/contrib_attention.cpp) on what ONNX Runtime takes beyond what `kpt export`
// writes, and the pass that hands them to the Attention / RotaryEmbedding fast path
// (src/passes/contrib_attention_to_standard.cpp) without changing results.
#include <gtest/gtest.h>

#include "core/compare.hpp"
#include "ir/model.hpp"
#include "kpt/error.hpp"
#include "ops/run_node.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"

namespace kpt {
namespace {

using testing::make_node;
using testing::random_f32;

ir::Attribute int_attr(const std::string& n, int64_t v) {
  return ir::Attribute::of_int(n, v);
}

// The contrib reference kernels on what ONNX Runtime takes beyond what the export writes.
TEST(ContribAttentionKernels, KeyPaddingMaskIsAnAdditiveFilterValue) {
  const int64_t b = 2, s = 3, l = 4, heads = 2, d = 8;
  Tensor kpm(DType::I32, {b, l});
  for (int64_t i = 0; i < kpm.numel(); ++i) kpm.data<int32_t>()[i] = i % 4 == 3 ? 0 : 1;
  Tensor bias(DType::F32, {b, 1, 1, l});
  for (int64_t i = 0; i < bias.numel(); ++i) bias.data<float>()[i] = i % 4 == 3 ? -10000.0f : 0;
  const std::vector<Value> in = {
      Value::of(random_f32({b, s, d}, 40)), Value::of(random_f32({b, l, d}, 41)),
      Value::of(random_f32({b, l, d}, 42)), Value::of(kpm), Value::of(bias)};
  ir::Node mha =
      make_node("MultiHeadAttention", {"q", "k", "v", "", "kpm"}, {"y"}, 1, "com.microsoft");
  mha.attrs["num_heads"] = int_attr("num_heads", heads);
  ir::Node att = make_node("Attention", {"q", "k", "v", "bias"}, {"y"}, 23);
  att.attrs["q_num_heads"] = int_attr("q_num_heads", heads);
  att.attrs["kv_num_heads"] = int_attr("kv_num_heads", heads);
  const auto got = ops::run_node(mha, {&in[0], &in[1], &in[2], nullptr, &in[3]}, nullptr);
  const auto want = ops::run_node(att, {&in[0], &in[1], &in[2], &in[4]}, nullptr);
  EXPECT_TRUE(compare_outputs(got[0].tensor, want[0].tensor, 1e-6, 1e-6).within_tolerance());
  mha.inputs.push_back("past");  // a KV cache is not taken: said by name
  mha.inputs[3] = "";
  EXPECT_THROW(
      ops::run_node(mha, {&in[0], &in[1], &in[2], nullptr, nullptr, nullptr, &in[1]}, nullptr),
      Unsupported);
}

TEST(ContribAttentionKernels, RotaryStartOffsetIsPositionsFromIt) {
  const int64_t b = 2, s = 3, heads = 2, d = 4;
  const Value x = Value::of(random_f32({b, s, heads * d}, 43));
  const Value cos = Value::of(random_f32({9, d / 2}, 44)),
              sin = Value::of(random_f32({9, d / 2}, 45));
  Tensor start(DType::I64, {1});
  start.data<int64_t>()[0] = 4;
  Tensor ids(DType::I64, {b, s});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int64_t>()[i] = 4 + i % s;
  const Value start_v = Value::of(start), ids_v = Value::of(ids);
  ir::Node contrib = make_node("RotaryEmbedding", {"x", "p", "c", "s"}, {"y"}, 1, "com.microsoft");
  contrib.attrs["num_heads"] = int_attr("num_heads", heads);
  ir::Node standard = make_node("RotaryEmbedding", {"x", "c", "s", "p"}, {"y"}, 23);
  standard.attrs["num_heads"] = int_attr("num_heads", heads);
  const auto got = ops::run_node(contrib, {&x, &start_v, &cos, &sin}, nullptr);
  const auto want = ops::run_node(standard, {&x, &cos, &sin, &ids_v}, nullptr);
  EXPECT_TRUE(compare_outputs(got[0].tensor, want[0].tensor, 0, 0).within_tolerance());
}

ir::Shape known(const Dims& d) {
  ir::Shape s;
  for (int64_t v : d) s.push_back(ir::Dim::of(v));
  return s;
}

// One contrib node over graph inputs `in`; optimized (the pass) and not, on the same values.
void expect_pass_rewrites(ir::Node node, const std::vector<std::pair<std::string, Tensor>>& in,
                          const std::string& becomes) {
  ir::Graph g;
  g.opsets = {{"", 17}, {"com.microsoft", 1}};
  std::vector<Value> values;
  for (const auto& [name, t] : in) {
    g.inputs.push_back({name, ir::Type::tensor(t.dtype(), known(t.dims()))});
    values.push_back(Value::of(t));
  }
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.nodes = {std::move(node)};
  ir::sort_and_verify(g);
  const auto want = runtime::run_graph(g, values);
  ir::Graph optimized = g;
  passes::optimize(optimized, OptimizationLevel::Basic);
  ASSERT_EQ(optimized.nodes.back().op_type, becomes) << ir::print(optimized);
  EXPECT_TRUE(optimized.nodes.back().domain.empty());
  const auto got = runtime::run_graph(optimized, values);
  const Agreement a = compare_outputs(got[0].tensor, want[0].tensor, 1e-6, 1e-6);
  EXPECT_TRUE(a.within_tolerance()) << a.max_abs << "\n" << ir::print(optimized);
}

TEST(ContribAttentionToStandard, MultiHeadAttentionWith4dKeyValueAndBias) {
  ir::Node mha =
      make_node("MultiHeadAttention", {"q", "k", "v", "", "", "bias"}, {"y"}, 1, "com.microsoft");
  mha.attrs["num_heads"] = int_attr("num_heads", 2);
  mha.attrs["scale"] = ir::Attribute::of_float("scale", 0.4f);
  expect_pass_rewrites(mha,
                       {{"q", random_f32({2, 3, 8}, 50)},
                        {"k", random_f32({2, 2, 5, 4}, 51)},
                        {"v", random_f32({2, 2, 5, 4}, 52)},
                        {"bias", random_f32({2, 1, 3, 5}, 53)}},
                       "Attention");
}

TEST(ContribAttentionToStandard, UnidirectionalOnlyWithEqualLengths) {
  ir::Node mha = make_node("MultiHeadAttention", {"q", "k", "v"}, {"y"}, 1, "com.microsoft");
  mha.attrs["num_heads"] = int_attr("num_heads", 2);
  mha.attrs["unidirectional"] = int_attr("unidirectional", 1);
  expect_pass_rewrites(mha,
                       {{"q", random_f32({1, 4, 6}, 54)},
                        {"k", random_f32({1, 4, 6}, 55)},
                        {"v", random_f32({1, 4, 6}, 56)}},
                       "Attention");
  // S > L: ONNX Runtime's causal mask is not Attention's is_causal for S != L in general, so
  // the node stays with its reference kernel.
  ir::Graph g;
  g.opsets = {{"", 17}, {"com.microsoft", 1}};
  for (const auto& [name, d] :
       {std::pair<std::string, Dims>{"q", {1, 6, 6}}, {"k", {1, 4, 6}}, {"v", {1, 4, 6}}})
    g.inputs.push_back({name, ir::Type::tensor(DType::F32, known(d))});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  g.nodes = {mha};
  passes::optimize(g, OptimizationLevel::Basic);
  EXPECT_EQ(g.nodes.back().domain, "com.microsoft");
}

TEST(ContribAttentionToStandard, RotaryWithPositionIds) {
  for (int64_t interleaved : {0, 1}) {
    ir::Node rot =
        make_node("RotaryEmbedding", {"x", "pos", "cos", "sin"}, {"y"}, 1, "com.microsoft");
    rot.attrs["num_heads"] = int_attr("num_heads", 2);
    rot.attrs["rotary_embedding_dim"] = int_attr("rotary_embedding_dim", 4);
    rot.attrs["interleaved"] = int_attr("interleaved", interleaved);
    Tensor pos(DType::I64, {2, 3});
    for (int64_t i = 0; i < pos.numel(); ++i) pos.data<int64_t>()[i] = (i * 3) % 5;
    expect_pass_rewrites(rot,
                         {{"x", random_f32({2, 3, 12}, 57)},
                          {"pos", pos},
                          {"cos", random_f32({5, 2}, 58)},
                          {"sin", random_f32({5, 2}, 59)}},
                         "RotaryEmbedding");
  }
}

}  // namespace
}  // namespace kpt
