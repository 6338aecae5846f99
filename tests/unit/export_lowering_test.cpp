// The export lowering (src/export): each fused node, lowered in both modes, computes what it
// computed before on fresh random inputs (reference kernels on both sides), and what is left is
// valid at the model's opset: no kpt nodes, no default-domain node newer than the model's
// opset, no com.microsoft node in standard mode.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/compare.hpp"
#include "export/onnx_lowering.hpp"
#include "ir/model.hpp"
#include "kpt/error.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"

namespace kpt {
namespace {

using onnx_export::ExportMode;
using testing::make_node;
using testing::random_f32;

struct Input {
  std::string name;
  Tensor value;
};

ir::Attribute int_attr(const std::string& n, int64_t v) {
  return ir::Attribute::of_int(n, v);
}

// A model of one fused node (plus any helpers) with graph inputs `inputs` (random values drawn
// by the test) and constant `weights`, at default-domain opset `opset`.
struct Case {
  int opset = 17;
  std::vector<ir::Node> nodes;
  std::vector<Input> inputs;
  std::vector<Input> weights;
  std::vector<std::string> outputs;

  ir::Model model() const {
    ir::Model m;
    m.ir_version = 8;
    m.opsets = {{"", opset}, {"com.microsoft", 1}, {"kpt", 1}};
    ir::Graph& g = m.graph;
    g.opsets = m.opsets;
    for (const auto& i : inputs)
      g.inputs.push_back({i.name, ir::Type::tensor(i.value.dtype(), shape(i.value.dims()))});
    for (const auto& w : weights) g.initializers[w.name] = w.value;
    for (const auto& o : outputs) g.outputs.push_back({o, ir::Type::tensor(DType::F32)});
    g.nodes = nodes;
    ir::sort_and_verify(g);
    return m;
  }
  static ir::Shape shape(const Dims& d) {
    ir::Shape s;
    for (int64_t v : d) s.push_back(ir::Dim::of(v));
    return s;
  }
  std::vector<Value> values() const {
    std::vector<Value> v;
    for (const auto& i : inputs) v.push_back(Value::of(i.value));
    return v;
  }
};

void expect_valid(const ir::Model& m, ExportMode mode) {
  const int opset = m.opsets.at("");
  for (const auto& n : m.graph.nodes) {
    EXPECT_NE(n.domain, "kpt") << n.label();
    if (mode == ExportMode::StandardOnly) {
      EXPECT_NE(n.domain, "com.microsoft") << n.label();
    }
    if (n.domain.empty()) {
      EXPECT_LE(n.opset, opset) << n.label();
    }
  }
  EXPECT_EQ(m.opsets.count("kpt"), 0u);
  EXPECT_EQ(m.metadata.at("kpt.export_mode"), onnx_export::export_mode_name(mode));
}

// Lowers the case in `mode` and compares the outputs; returns the lowered model.
ir::Model lower_and_compare(const Case& c, ExportMode mode, double rtol = 1e-5,
                            double atol = 1e-5) {
  const ir::Model original = c.model();
  ir::Model lowered = original;
  onnx_export::lower_for_onnx(lowered, mode);
  expect_valid(lowered, mode);
  const auto want = runtime::run_graph(original.graph, c.values());
  const auto got = runtime::run_graph(lowered.graph, c.values());
  EXPECT_EQ(want.size(), got.size());
  for (size_t o = 0; o < want.size() && o < got.size(); ++o) {
    const Agreement a = compare_outputs(got[o].tensor, want[o].tensor, rtol, atol);
    EXPECT_TRUE(a.within_tolerance()) << onnx_export::export_mode_name(mode) << " output " << o
                                      << ": max abs " << a.max_abs << " " << a.shape_error << "\n"
                                      << ir::print(lowered.graph);
  }
  return lowered;
}

// Both modes; returns the ops of each lowered graph for the test to check.
std::pair<ir::Model, ir::Model> both_modes(const Case& c, double tol = 1e-5) {
  return {lower_and_compare(c, ExportMode::ContribOps, tol, tol),
          lower_and_compare(c, ExportMode::StandardOnly, tol, tol)};
}

bool has_op(const ir::Model& m, const std::string& domain, const std::string& op) {
  for (const auto& n : m.graph.nodes) {
    if (n.domain == domain && n.op_type == op) return true;
  }
  return false;
}

ir::Node fused(std::string op, std::vector<std::string> in, std::vector<std::string> out, int opset,
               std::string domain = "") {
  return make_node(std::move(op), std::move(in), std::move(out), opset, std::move(domain));
}

Case matmul_case(const std::string& act, Dims a_dims, bool bias) {
  Case c;
  ir::Node n = fused("MatMulBiasAct", {"a", "w"}, {"y"}, 1, "kpt");
  if (bias) n.inputs.push_back("b");
  n.attrs["activation"] = ir::Attribute::of_string("activation", act);
  c.nodes = {n};
  c.inputs = {{"a", random_f32(a_dims, 1)}};
  c.weights = {{"w", random_f32({a_dims.back(), 5}, 2)}, {"b", random_f32({5}, 3)}};
  c.outputs = {"y"};
  return c;
}

TEST(ExportLowering, MatMulBiasActEveryActivation) {
  for (const char* act : {"", "Relu", "Gelu", "GeluTanh", "Silu", "Sigmoid", "Tanh"}) {
    SCOPED_TRACE(act);
    auto [contrib, standard] = both_modes(matmul_case(act, {2, 3, 4}, true));
    EXPECT_FALSE(has_op(standard, "kpt", "MatMulBiasAct"));
    if (std::string(act) == "Gelu") {
      EXPECT_TRUE(has_op(contrib, "com.microsoft", "BiasGelu"));
    }
    if (std::string(act) == "GeluTanh") {
      EXPECT_TRUE(has_op(contrib, "com.microsoft", "FastGelu"));
    }
    if (std::string(act) == "Gelu") {
      EXPECT_TRUE(has_op(standard, "", "Erf"));
    }
  }
  both_modes(matmul_case("Gelu", {2, 3, 4}, false));
}

TEST(ExportLowering, TwoDimensionalMatMulBiasActBecomesGemmOrFusedGemm) {
  auto [relu, relu_std] = both_modes(matmul_case("Relu", {3, 4}, true));
  EXPECT_TRUE(has_op(relu, "com.microsoft", "FusedGemm"));
  auto [plain, plain_std] = both_modes(matmul_case("", {3, 4}, true));
  EXPECT_TRUE(has_op(plain, "", "Gemm"));
}

TEST(ExportLowering, GeluBelowOpset20) {
  for (const char* approx : {"none", "tanh"}) {
    Case c;
    ir::Node n = fused("Gelu", {"x"}, {"y"}, 20);
    n.attrs["approximate"] = ir::Attribute::of_string("approximate", approx);
    c.nodes = {n};
    c.inputs = {{"x", random_f32({2, 7}, 4, -4, 4)}};
    c.outputs = {"y"};
    auto [contrib, standard] = both_modes(c);
    EXPECT_FALSE(has_op(standard, "", "Gelu"));
    c.opset = 20;  // the model's own opset has Gelu: kept
    EXPECT_TRUE(has_op(lower_and_compare(c, ExportMode::StandardOnly), "", "Gelu"));
  }
}

TEST(ExportLowering, SwiGlu) {
  Case c;
  ir::Node n = fused("SwiGLU", {"g", "u"}, {"y"}, 28);
  c.nodes = {n};
  c.inputs = {{"g", random_f32({2, 6}, 5)}, {"u", random_f32({2, 6}, 6)}};
  c.outputs = {"y"};
  auto [contrib, standard] = both_modes(c);
  EXPECT_FALSE(has_op(contrib, "", "SwiGLU"));
}

TEST(ExportLowering, LayerNormalizationBelowOpset17WithStatistics) {
  for (int64_t axis : {-1, 1}) {
    Case c;
    c.opset = 13;
    ir::Node n = fused("LayerNormalization", {"x", "s", "b"}, {"y", "mean", "inv"}, 17);
    n.attrs["axis"] = int_attr("axis", axis);
    c.nodes = {n};
    c.inputs = {{"x", random_f32({2, 3, 4}, 7)}};
    const Dims p = axis == -1 ? Dims{4} : Dims{3, 4};
    c.weights = {{"s", random_f32(p, 8)}, {"b", random_f32(p, 9)}};
    c.outputs = {"y", "mean", "inv"};
    auto [contrib, standard] = both_modes(c, 1e-4);
    EXPECT_FALSE(has_op(standard, "", "LayerNormalization"));
  }
}

TEST(ExportLowering, RmsNormalizationBelowOpset23) {
  Case c;
  ir::Node n = fused("RMSNormalization", {"x", "s"}, {"y"}, 23);
  n.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-6f);
  c.nodes = {n};
  c.inputs = {{"x", random_f32({2, 3, 8}, 10)}};
  c.weights = {{"s", random_f32({8}, 11)}};
  c.outputs = {"y"};
  auto [contrib, standard] = both_modes(c, 1e-4);
  EXPECT_TRUE(has_op(contrib, "", "SimplifiedLayerNormalization"));
  EXPECT_FALSE(has_op(standard, "", "SimplifiedLayerNormalization"));
}

Case skip_case(bool simplified, Dims dims) {
  Case c;
  const Dims h{dims.back()};
  ir::Node n = simplified ? fused("SkipSimplifiedLayerNormalization", {"x", "r", "g", "bias"},
                                  {"y", "", "inv", "sum"}, 1, "com.microsoft")
                          : fused("SkipLayerNormalization", {"x", "r", "g", "beta", "bias"},
                                  {"y", "mean", "inv", "sum"}, 1, "com.microsoft");
  n.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-5f);
  c.nodes = {n};
  c.inputs = {{"x", random_f32(dims, 12)}, {"r", random_f32(dims, 13)}};
  c.weights = {{"g", random_f32(h, 14)}, {"beta", random_f32(h, 15)}, {"bias", random_f32(h, 16)}};
  c.outputs = simplified ? std::vector<std::string>{"y", "inv", "sum"}
                         : std::vector<std::string>{"y", "mean", "inv", "sum"};
  return c;
}

TEST(ExportLowering, SkipLayerNormalizationKeptFor3dDecomposedOtherwise) {
  for (bool simplified : {false, true}) {
    SCOPED_TRACE(simplified);
    const std::string op =
        simplified ? "SkipSimplifiedLayerNormalization" : "SkipLayerNormalization";
    auto [contrib3, standard3] = both_modes(skip_case(simplified, {2, 3, 8}), 1e-4);
    EXPECT_TRUE(has_op(contrib3, "com.microsoft", op));
    // ONNX Runtime's kernels take 2-D or 3-D inputs only.
    auto [contrib4, standard4] = both_modes(skip_case(simplified, {2, 2, 3, 8}), 1e-4);
    EXPECT_FALSE(has_op(contrib4, "com.microsoft", op));
  }
}

Case attention_case(Dims q, Dims kv, std::vector<ir::Attribute> attrs, const Tensor* mask) {
  Case c;
  ir::Node n = fused("Attention", {"q", "k", "v"}, {"y"}, 23);
  for (auto& a : attrs) n.attrs[a.name] = a;
  c.inputs = {{"q", random_f32(q, 17)}, {"k", random_f32(kv, 18)}, {"v", random_f32(kv, 19)}};
  if (mask) {
    n.inputs.push_back("mask");
    c.inputs.push_back({"mask", *mask});
  }
  c.nodes = {n};
  c.outputs = {"y"};
  return c;
}

const ir::Node* find_op(const ir::Model& m, const std::string& domain, const std::string& op) {
  for (const auto& n : m.graph.nodes) {
    if (n.domain == domain && n.op_type == op) return &n;
  }
  return nullptr;
}

// Contrib mode writes MultiHeadAttention (checked here), standard mode never does; both compute
// what Attention did. Returns the contrib model.
ir::Model attention_as_mha(const Case& c) {
  auto [contrib, standard] = both_modes(c);
  EXPECT_TRUE(has_op(contrib, "com.microsoft", "MultiHeadAttention")) << ir::print(contrib.graph);
  EXPECT_FALSE(has_op(contrib, "", "Softmax")) << ir::print(contrib.graph);
  EXPECT_FALSE(has_op(standard, "com.microsoft", "MultiHeadAttention"));
  return contrib;
}

TEST(ExportLowering, Attention4dScaledWithFloatMask) {
  const Tensor mask = random_f32({1, 1, 5, 5}, 20);
  const auto scale = ir::Attribute::of_float("scale", 0.3f);
  const ir::Model masked =
      attention_as_mha(attention_case({2, 3, 5, 4}, {2, 3, 5, 4}, {scale}, &mask));
  // Already (1, 1, S, L): passed as attention_bias without an Expand.
  EXPECT_FALSE(has_op(masked, "", "Expand")) << ir::print(masked.graph);
  EXPECT_FLOAT_EQ(find_op(masked, "com.microsoft", "MultiHeadAttention")->attr_float("scale", 0),
                  0.3f);
  const ir::Model plain = attention_as_mha(attention_case({2, 3, 5, 4}, {2, 3, 5, 4}, {}, nullptr));
  EXPECT_FALSE(find_op(plain, "com.microsoft", "MultiHeadAttention")->has_attr("scale"));
}

TEST(ExportLowering, AttentionPaddingMaskExpandedToAttentionBias) {
  // A key padding mask (B, 1, 1, L) and a 2-D (S, L) one become 4-D attention_bias by Expand.
  for (const Dims& d : {Dims{2, 1, 1, 6}, Dims{4, 6}}) {
    const Tensor mask = random_f32(d, 33);
    const ir::Model m = attention_as_mha(attention_case({2, 3, 4, 8}, {2, 3, 6, 8}, {}, &mask));
    EXPECT_TRUE(has_op(m, "", "Expand")) << ir::print(m.graph);
  }
}

TEST(ExportLowering, AttentionCausalUnidirectionalOnlyForEqualLengths) {
  // S == L: MHA's unidirectional masks as is_causal does.
  const ir::Model square = attention_as_mha(attention_case(
      {2, 5, 12}, {2, 5, 12},
      {int_attr("q_num_heads", 3), int_attr("kv_num_heads", 3), int_attr("is_causal", 1)},
      nullptr));
  EXPECT_EQ(find_op(square, "com.microsoft", "MultiHeadAttention")->attr_int("unidirectional", 0),
            1);
  // S != L: ONNX Runtime's unidirectional differs, so the causal mask is an attention_bias.
  const Tensor mask = random_f32({1, 1, 3, 5}, 34);
  const ir::Model rect = attention_as_mha(
      attention_case({1, 2, 3, 4}, {1, 2, 5, 4}, {int_attr("is_causal", 1)}, &mask));
  const ir::Node* mha = find_op(rect, "com.microsoft", "MultiHeadAttention");
  EXPECT_EQ(mha->attr_int("unidirectional", 0), 0);
  EXPECT_TRUE(has_op(rect, "", "Trilu"));
}

TEST(ExportLowering, Attention4dValueHeadSizeDiffersFromKeys) {
  // ONNX Runtime takes 4-D key/value of one shape only: here both go to (B, L, N * H).
  Case c = attention_case({2, 2, 3, 4}, {2, 2, 5, 4}, {}, nullptr);
  c.inputs[2].value = random_f32({2, 2, 5, 6}, 35);
  const ir::Model m = attention_as_mha(c);
  const ir::Node* mha = find_op(m, "com.microsoft", "MultiHeadAttention");
  for (size_t i : {1, 2}) {
    const ir::Node* producer = nullptr;
    for (const auto& n : m.graph.nodes) {
      if (!n.outputs.empty() && n.outputs[0] == mha->inputs[i]) producer = &n;
    }
    ASSERT_NE(producer, nullptr) << mha->inputs[i];
    EXPECT_EQ(producer->op_type, "Reshape");
  }
}

TEST(ExportLowering, AttentionGroupedQueryCausal) {
  auto [contrib, standard] =
      both_modes(attention_case({1, 4, 5, 3}, {1, 2, 5, 3}, {int_attr("is_causal", 1)}, nullptr));
  EXPECT_TRUE(has_op(standard, "", "Trilu"));
  // MultiHeadAttention takes no grouped-query K/V: the standard form in both modes.
  EXPECT_FALSE(has_op(contrib, "com.microsoft", "MultiHeadAttention"));
}

TEST(ExportLowering, AttentionWithSoftcapStaysStandard) {
  auto [contrib, standard] = both_modes(attention_case(
      {1, 2, 4, 3}, {1, 2, 4, 3}, {ir::Attribute::of_float("softcap", 2.0f)}, nullptr));
  EXPECT_FALSE(has_op(contrib, "com.microsoft", "MultiHeadAttention"));
  EXPECT_TRUE(has_op(contrib, "", "Tanh"));
}

TEST(ExportLowering, Attention3dWithBoolMaskAndFullyMaskedRow) {
  Tensor mask(DType::Bool, {2, 1, 4, 4});
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data<bool>()[i] = (i % 3) != 0;
  for (int64_t j = 0; j < 4; ++j) mask.data<bool>()[j] = false;  // row 0 of batch 0: all masked
  for (int64_t heads : {1, 2}) {
    const ir::Model m = attention_as_mha(
        attention_case({2, 4, 6}, {2, 4, 6},
                       {int_attr("q_num_heads", heads), int_attr("kv_num_heads", heads)}, &mask));
    // The fully masked row: NaN from MultiHeadAttention, 0 in Attention.
    EXPECT_TRUE(has_op(m, "", "IsNaN"));
  }
}

Case rotary_case(bool position_ids, bool three_d, int64_t rotary_dim, bool interleaved = false,
                 int64_t cache_width = 0) {
  Case c;
  const int64_t b = 2, h = 2, s = 3, d = 8, half = (rotary_dim ? rotary_dim : d) / 2;
  ir::Node n = fused("RotaryEmbedding", {"x", "cos", "sin"}, {"y"}, 23);
  if (three_d) n.attrs["num_heads"] = int_attr("num_heads", h);
  if (rotary_dim) n.attrs["rotary_embedding_dim"] = int_attr("rotary_embedding_dim", rotary_dim);
  if (interleaved) n.attrs["interleaved"] = int_attr("interleaved", 1);
  c.inputs = {{"x", random_f32(three_d ? Dims{b, s, h * d} : Dims{b, h, s, d}, 21)}};
  const int64_t w = cache_width ? cache_width : half;
  const Dims cache = position_ids ? Dims{7, w} : Dims{b, s, w};
  c.weights = {{"cos", random_f32(cache, 22)}, {"sin", random_f32(cache, 23)}};
  if (position_ids) {
    Tensor pos(DType::I64, {b, s});
    for (int64_t i = 0; i < pos.numel(); ++i) pos.data<int64_t>()[i] = (i * 5) % 7;
    c.weights.push_back({"pos", pos});
    n.inputs.push_back("pos");
  }
  c.nodes = {n};
  c.outputs = {"y"};
  return c;
}

TEST(ExportLowering, RotaryEmbeddingForms) {
  // With position ids: com.microsoft.RotaryEmbedding in contrib mode.
  for (bool three_d : {false, true}) {
    for (int64_t rot : {0, 4}) {
      SCOPED_TRACE(std::to_string(three_d) + " " + std::to_string(rot));
      auto [contrib, standard] = both_modes(rotary_case(true, three_d, rot));
      EXPECT_TRUE(has_op(contrib, "com.microsoft", "RotaryEmbedding")) << ir::print(contrib.graph);
      EXPECT_FALSE(has_op(standard, "com.microsoft", "RotaryEmbedding"));
    }
  }
  // A cache wider than rotary_dim / 2 is sliced to the width ONNX Runtime reads.
  auto [wide, wide_std] = both_modes(rotary_case(true, false, 4, false, 3));
  EXPECT_TRUE(has_op(wide, "", "Slice"));
  EXPECT_TRUE(has_op(wide, "com.microsoft", "RotaryEmbedding"));
  // Without position ids (3-D caches) the contrib op has no form: standard ops in both modes.
  for (int64_t rot : {0, 4}) {
    auto [contrib, standard] = both_modes(rotary_case(false, false, rot));
    EXPECT_FALSE(has_op(contrib, "com.microsoft", "RotaryEmbedding"));
  }
}

TEST(ExportLowering, InterleavedRotaryOnlyInContribMode) {
  for (bool three_d : {false, true}) {
    for (int64_t rot : {0, 4}) {
      const Case c = rotary_case(true, three_d, rot, true);
      const ir::Model contrib = lower_and_compare(c, ExportMode::ContribOps);
      EXPECT_TRUE(has_op(contrib, "com.microsoft", "RotaryEmbedding"));
      ir::Model standard = c.model();
      EXPECT_THROW(onnx_export::lower_for_onnx(standard, ExportMode::StandardOnly), Unsupported);
    }
  }
}

TEST(ExportLowering, FusedConvActivations) {
  for (const char* act : {"", "Relu", "LeakyRelu", "Clip", "HardSigmoid"}) {
    SCOPED_TRACE(act);
    Case c;
    ir::Node n = fused("FusedConv", {"x", "w", "b", "z"}, {"y"}, 1, "com.microsoft");
    n.attrs["activation"] = ir::Attribute::of_string("activation", act);
    ir::Attribute params;
    params.name = "activation_params";
    params.kind = ir::Attribute::Kind::Floats;
    params.floats = {0.2f, 0.5f};
    n.attrs["activation_params"] = params;
    n.attrs["pads"] = ir::Attribute::of_ints("pads", {1, 1, 1, 1});
    c.nodes = {n};
    c.inputs = {{"x", random_f32({1, 2, 4, 4}, 24)}, {"z", random_f32({1, 3, 4, 4}, 25)}};
    c.weights = {{"w", random_f32({3, 2, 3, 3}, 26)}, {"b", random_f32({3}, 27)}};
    c.outputs = {"y"};
    auto [contrib, standard] = both_modes(c);
    EXPECT_TRUE(has_op(contrib, "com.microsoft", "FusedConv"));
    EXPECT_TRUE(has_op(standard, "", "Conv"));
  }
}

TEST(ExportLowering, BlockedLayoutUndone) {
  Case c;
  c.nodes = {make_node("Conv", {"x", "w1"}, {"c1"}, 17), make_node("Relu", {"c1"}, {"r1"}, 17),
             make_node("Conv", {"r1", "w2"}, {"y"}, 17)};
  c.nodes[0].attrs["pads"] = ir::Attribute::of_ints("pads", {1, 1, 1, 1});
  c.inputs = {{"x", random_f32({1, 16, 5, 5}, 28)}};
  c.weights = {{"w1", random_f32({16, 16, 3, 3}, 29, -0.2f, 0.2f)},
               {"w2", random_f32({16, 16, 1, 1}, 30, -0.2f, 0.2f)}};
  c.outputs = {"y"};
  ir::Model optimized = c.model();
  passes::optimize(optimized.graph, OptimizationLevel::All);
  ASSERT_TRUE(has_op(optimized, "kpt", "Blocked16Conv")) << ir::print(optimized.graph);
  for (ExportMode mode : {ExportMode::ContribOps, ExportMode::StandardOnly}) {
    ir::Model lowered = optimized;
    onnx_export::lower_for_onnx(lowered, mode);
    expect_valid(lowered, mode);
    const auto want = runtime::run_graph(c.model().graph, c.values());
    const auto got = runtime::run_graph(lowered.graph, c.values());
    EXPECT_TRUE(compare_outputs(got[0].tensor, want[0].tensor, 1e-4, 1e-5).within_tolerance());
  }
}

TEST(ExportLowering, PassMadeNodesFitTheModelOpset) {
  // fuse_rotary makes Shape with start/end (opset 15) and Unsqueeze with an axes input (13).
  Case c;
  c.opset = 11;
  ir::Node shape = make_node("Shape", {"x"}, {"s"}, 15);
  shape.attrs["start"] = int_attr("start", 1);
  ir::Node unsq = make_node("Unsqueeze", {"x", "axes"}, {"u"}, 13);
  c.nodes = {shape, unsq};
  c.inputs = {{"x", random_f32({2, 3, 4}, 31)}};
  Tensor axes(DType::I64, {1});
  axes.data<int64_t>()[0] = 0;
  c.weights = {{"axes", axes}};
  c.outputs = {"s", "u"};
  auto [contrib, standard] = both_modes(c);
  for (const auto& n : standard.graph.nodes) {
    EXPECT_FALSE(n.has_attr("start")) << n.label();
    if (n.op_type == "Unsqueeze") {
      EXPECT_EQ(n.inputs.size(), 1u);
    }
  }
}

TEST(ExportLowering, KptOpWithoutOnnxFormIsAnError) {
  Case c;
  c.nodes = {fused("ToBlocked16", {"x"}, {"xb"}, 1, "kpt"),
             fused("Relu", {"xb"}, {"y"}, 17)};  // a conversion with no blocked conv to undo
  c.inputs = {{"x", random_f32({1, 16, 2, 2}, 32)}};
  c.outputs = {"y"};
  ir::Model m = c.model();
  m.graph.nodes[0].op_type = "SomethingElse";
  EXPECT_THROW(onnx_export::lower_for_onnx(m, ExportMode::ContribOps), Error);
}

}  // namespace
}  // namespace kpt
