// fold_conv_batchnorm and fuse_conv_activation on small graphs: where they fire the optimized
// graph computes what the original did (reference kernels, random inputs); where an
// intermediate value is read elsewhere they leave the graph alone.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"
#include "tests/testing/model_builder.hpp"
#include "tests/testing/pass_check.hpp"

namespace kpt {
namespace {

using testing::count_ops;

ir::Node node(std::string op, std::vector<std::string> in, std::vector<std::string> out) {
  return testing::make_node(std::move(op), std::move(in), std::move(out), 17);
}

ir::Node conv(const std::string& x, const std::string& w, const std::string& b,
              const std::string& y) {
  ir::Node n = node("Conv", {x, w}, {y});
  if (!b.empty()) n.inputs.push_back(b);
  n.attrs["pads"] = ir::Attribute::of_ints("pads", {1, 1, 1, 1});
  return n;
}

Tensor random_f32(Dims dims, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t(DType::F32, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

constexpr int64_t kC = 8;

ir::Graph graph_with_input() {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back(
      {"x", ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::of(2), ir::Dim::of(kC), ir::Dim::of(6),
                                                   ir::Dim::of(6)})});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  return g;
}

// BatchNormalization of `in` with fresh constant statistics named after `p`.
ir::Node batch_norm(ir::Graph& g, const std::string& p, const std::string& in,
                    const std::string& out, uint32_t seed) {
  g.initializers[p + "_scale"] = random_f32({kC}, seed, 0.5f, 1.5f);
  g.initializers[p + "_bias"] = random_f32({kC}, seed + 1);
  g.initializers[p + "_mean"] = random_f32({kC}, seed + 2);
  g.initializers[p + "_var"] = random_f32({kC}, seed + 3, 0.5f, 1.5f);
  ir::Node n =
      node("BatchNormalization", {in, p + "_scale", p + "_bias", p + "_mean", p + "_var"}, {out});
  n.attrs["epsilon"] = ir::Attribute::of_float("epsilon", 1e-3f);
  return n;
}

// A ResNet basic block: conv-bn-relu, conv-bn, + x, relu.
ir::Graph residual_block() {
  ir::Graph g = graph_with_input();
  g.initializers["w1"] = random_f32({kC, kC, 3, 3}, 1);
  g.initializers["b1"] = random_f32({kC}, 2);
  g.initializers["w2"] = random_f32({kC, kC, 3, 3}, 3);
  g.nodes.push_back(conv("x", "w1", "b1", "c1"));
  g.nodes.push_back(batch_norm(g, "bn1", "c1", "n1", 10));
  g.nodes.push_back(node("Relu", {"n1"}, {"r1"}));
  g.nodes.push_back(conv("r1", "w2", "", "c2"));
  g.nodes.push_back(batch_norm(g, "bn2", "c2", "n2", 20));
  g.nodes.push_back(node("Add", {"n2", "x"}, {"a"}));
  g.nodes.push_back(node("Relu", {"a"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

// Optimizes a copy at Extended and checks every output against the original's.
ir::Graph optimize_and_compare(const ir::Graph& reference) {
  ir::Graph optimized = reference;
  passes::optimize(optimized, OptimizationLevel::Extended);
  const Tensor x = random_f32({2, kC, 6, 6}, 99);
  testing::expect_outputs_close(runtime::run_graph(reference, {Value::of(x)}),
                                runtime::run_graph(optimized, {Value::of(x)}), 1e-4);
  return optimized;
}

const ir::Node* find(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

TEST(ConvFusion, ResidualBlockBecomesTwoFusedConvs) {
  const ir::Graph opt = optimize_and_compare(residual_block());
  EXPECT_EQ(count_ops(opt, "FusedConv"), 2) << ir::print(opt);
  EXPECT_EQ(opt.nodes.size(), 2u) << ir::print(opt);
  const ir::Node& second = opt.nodes[1];
  EXPECT_EQ(second.domain, "com.microsoft");
  ASSERT_EQ(second.inputs.size(), 4u) << ir::print(opt);
  EXPECT_EQ(second.inputs[3], "x");
  EXPECT_EQ(second.attr_string("activation", "?"), "Relu");
  EXPECT_EQ(opt.nodes[0].attr_string("activation", "?"), "Relu");
}

TEST(ConvFusion, BatchNormFoldsIntoConvWithoutBias) {
  ir::Graph g = graph_with_input();
  g.initializers["w"] = random_f32({kC, kC, 3, 3}, 5);
  g.nodes.push_back(conv("x", "w", "", "c"));
  g.nodes.push_back(batch_norm(g, "bn", "c", "y", 30));
  ir::sort_and_verify(g);
  const ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "BatchNormalization"), 0) << ir::print(opt);
  ASSERT_EQ(count_ops(opt, "Conv"), 1);
  EXPECT_EQ(find(opt, "Conv")->inputs.size(), 3u);  // the folded bias
  // The original weights are left for other readers; the folded copy replaces them here.
  EXPECT_NE(find(opt, "Conv")->inputs[1], "w");
}

TEST(ConvFusion, NothingFusedWhenTheConvOutputIsAGraphOutput) {
  ir::Graph g = residual_block();
  g.outputs.push_back({"c1", ir::Type::tensor(DType::F32)});
  const ir::Graph opt = optimize_and_compare(g);
  // c1 stays: its BatchNormalization and the Relu after it are not folded into the first conv.
  EXPECT_EQ(count_ops(opt, "BatchNormalization"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Conv"), 1) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "FusedConv"), 1) << ir::print(opt);
}

TEST(ConvFusion, BatchNormWithNonConstantStatisticsStays) {
  ir::Graph g = residual_block();
  g.initializers.erase("bn1_mean");
  g.inputs.push_back({"bn1_mean", ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::of(kC)})});
  passes::optimize(g, OptimizationLevel::Extended);
  EXPECT_EQ(count_ops(g, "BatchNormalization"), 1) << ir::print(g);
}

TEST(ConvFusion, ReluNotFusedWhenTheConvOutputHasAnotherReader) {
  ir::Graph g = graph_with_input();
  g.initializers["w"] = random_f32({kC, kC, 3, 3}, 6);
  g.nodes.push_back(conv("x", "w", "", "c"));
  g.nodes.push_back(node("Relu", {"c"}, {"r"}));
  g.nodes.push_back(node("Mul", {"c", "r"}, {"y"}));
  ir::sort_and_verify(g);
  const ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "FusedConv"), 0) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Relu"), 1);
}

TEST(ConvFusion, ConvReluAloneBecomesFusedConv) {
  ir::Graph g = graph_with_input();
  g.initializers["w"] = random_f32({kC, kC, 3, 3}, 7);
  g.initializers["b"] = random_f32({kC}, 8);
  g.nodes.push_back(conv("x", "w", "b", "c"));
  g.nodes.push_back(node("Relu", {"c"}, {"y"}));
  ir::sort_and_verify(g);
  const ir::Graph opt = optimize_and_compare(g);
  ASSERT_EQ(opt.nodes.size(), 1u) << ir::print(opt);
  EXPECT_EQ(opt.nodes[0].op_type, "FusedConv");
  EXPECT_EQ(opt.nodes[0].inputs.size(), 3u);
}

// An Add that broadcasts (a per-channel constant) is not a residual of the output's shape.
TEST(ConvFusion, BroadcastingAddIsNotAResidual) {
  ir::Graph g = graph_with_input();
  g.initializers["w"] = random_f32({kC, kC, 3, 3}, 9);
  g.initializers["shift"] = random_f32({1, kC, 1, 1}, 10);
  g.nodes.push_back(conv("x", "w", "", "c"));
  g.nodes.push_back(node("Add", {"c", "shift"}, {"a"}));
  g.nodes.push_back(node("Relu", {"a"}, {"y"}));
  ir::sort_and_verify(g);
  const ir::Graph opt = optimize_and_compare(g);
  EXPECT_EQ(count_ops(opt, "FusedConv"), 0) << ir::print(opt);
  EXPECT_EQ(count_ops(opt, "Add"), 1);
}

std::string bytes_of(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw()), static_cast<size_t>(t.numel()) * 4);
}

// The block as a model: optimized and on the fast kernels it matches the reference kernels
// on the original graph.
TEST(ConvFusion, FusedBlockOnFastKernelsMatchesReference) {
  const ir::Graph g = residual_block();
  testing::ModelBuilder b(17);
  b.input("x", DType::F32, testing::DeclDims{2, kC, 6, 6});
  for (const auto& [name, t] : g.initializers) {
    testing::DeclDims dims(t.dims().begin(), t.dims().end());
    b.initializer(name, DType::F32, dims, bytes_of(t));
  }
  for (const auto& n : g.nodes) {
    auto& p = b.node(n.op_type, n.inputs, n.outputs);
    if (n.has_attr("pads")) testing::add_ints_attr(p, "pads", n.attr_ints("pads"));
    if (n.has_attr("epsilon")) testing::add_float_attr(p, "epsilon", n.attr_float("epsilon", 0));
  }
  b.output("y", DType::F32, std::nullopt);
  SessionOptions fast_opts;
  fast_opts.optimization = OptimizationLevel::Extended;
  SessionOptions ref_opts;
  ref_opts.optimization = OptimizationLevel::None;
  ref_opts.fast_kernels = false;
  const Session fast = Session::from_bytes(b.bytes(), fast_opts);
  const Session ref = Session::from_bytes(b.bytes(), ref_opts);
  EXPECT_EQ(fast.kernel_histogram().at("dnnl.conv(fp32)"), 2);
  const Tensor x = random_f32({2, kC, 6, 6}, 42);
  const Tensor want = ref.run_tensors({{"x", x}})[0];
  const Tensor got = fast.run_tensors({{"x", x}})[0];
  ASSERT_EQ(got.dims(), want.dims());
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i],
                1e-4 * (1 + std::abs(want.data<float>()[i])))
        << i;
}

}  // namespace
}  // namespace kpt

namespace kpt {
namespace {

constexpr int64_t kWide = 16;  // channel count the blocked layout needs

// x -> conv a -> relu -> conv b (+ x) -> relu -> y, with 16 channels, optionally exposing the
// first convolution's output as a graph output too.
ir::Graph wide_chain(bool expose_first) {
  ir::Graph g;
  g.opsets[""] = 17;
  g.inputs.push_back(
      {"x", ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::sym("N"), ir::Dim::of(kWide),
                                                   ir::Dim::of(5), ir::Dim::of(7)})});
  g.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  if (expose_first) g.outputs.push_back({"r", ir::Type::tensor(DType::F32)});
  g.initializers["wa"] = random_f32({kWide, kWide, 3, 3}, 31);
  g.initializers["ba"] = random_f32({kWide}, 32);
  g.initializers["wb"] = random_f32({kWide, kWide, 1, 1}, 33);
  g.nodes.push_back(conv("x", "wa", "ba", "a"));
  g.nodes.push_back(node("Relu", {"a"}, {"r"}));
  ir::Node b = node("Conv", {"r", "wb"}, {"c"});
  g.nodes.push_back(b);
  g.nodes.push_back(node("Add", {"c", "x"}, {"s"}));
  g.nodes.push_back(node("Relu", {"s"}, {"y"}));
  ir::sort_and_verify(g);
  return g;
}

int count_domain_op(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes) c += n.domain == "kpt" && n.op_type == op;
  return c;
}

// Level all keeps the chain blocked: one conversion in, one out, and the same outputs on the
// reference kernels (which convert around FusedConv's computation).
TEST(ConvBlockedLayout, ChainConvertsOnlyAtItsEnds) {
  for (bool expose : {false, true}) {
    SCOPED_TRACE(expose);
    const ir::Graph g = wide_chain(expose);
    ir::Graph opt = g;
    passes::optimize(opt, OptimizationLevel::All);
    EXPECT_EQ(count_domain_op(opt, "Blocked16Conv"), 2) << ir::print(opt);
    EXPECT_EQ(count_domain_op(opt, "ToBlocked16"), 1) << ir::print(opt);
    EXPECT_EQ(count_domain_op(opt, "FromBlocked16"), expose ? 2 : 1) << ir::print(opt);
    const Tensor x = random_f32({3, kWide, 5, 7}, 77);
    const auto want = runtime::run_graph(g, {Value::of(x)});
    const auto got = runtime::run_graph(opt, {Value::of(x)});
    ASSERT_EQ(want.size(), got.size());
    for (size_t o = 0; o < want.size(); ++o) {
      ASSERT_EQ(want[o].tensor.dims(), got[o].tensor.dims());
      for (int64_t i = 0; i < want[o].tensor.numel(); ++i)
        ASSERT_NEAR(got[o].tensor.data<float>()[i], want[o].tensor.data<float>()[i], 1e-4) << i;
    }
  }
}

// The blocked layout is a CPU kernel decision: a graph optimized for a GPU target keeps plain
// Conv / FusedConv nodes, with the level-extended fusions still applied.
TEST(ConvBlockedLayout, GpuTargetSkipsTheCpuLayout) {
  ir::Graph opt = wide_chain(false);
  const auto report = passes::optimize(opt, OptimizationLevel::All, passes::PassTarget::Gpu);
  EXPECT_EQ(count_domain_op(opt, "Blocked16Conv"), 0) << ir::print(opt);
  EXPECT_EQ(count_domain_op(opt, "ToBlocked16"), 0) << ir::print(opt);
  int fused = 0;
  for (const auto& n : opt.nodes) fused += n.op_type == "FusedConv";
  EXPECT_EQ(fused, 2) << ir::print(opt);
  for (const auto& r : report.applied) EXPECT_NE(r.pass, "conv_blocked_layout");
}

TEST(ConvBlockedLayout, NarrowOrLoneConvolutionsStayPlain) {
  ir::Graph lone = graph_with_input();  // 8 channels
  lone.initializers["w"] = random_f32({kC, kC, 3, 3}, 5);
  lone.nodes.push_back(conv("x", "w", "", "y"));
  passes::optimize(lone, OptimizationLevel::All);
  EXPECT_EQ(count_domain_op(lone, "Blocked16Conv"), 0) << ir::print(lone);
  ir::Graph narrow = residual_block();  // two convolutions of 8 channels
  passes::optimize(narrow, OptimizationLevel::All);
  EXPECT_EQ(count_domain_op(narrow, "Blocked16Conv"), 0) << ir::print(narrow);
}

std::string chain_model_bytes(const ir::Graph& g) {
  testing::ModelBuilder b(17);
  b.input("x", DType::F32, testing::DeclDims{-1, kWide, 5, 7});
  for (const auto& [name, t] : g.initializers) {
    testing::DeclDims dims(t.dims().begin(), t.dims().end());
    b.initializer(name, DType::F32, dims, bytes_of(t));
  }
  for (const auto& n : g.nodes) {
    auto& p = b.node(n.op_type, n.inputs, n.outputs);
    if (n.has_attr("pads")) testing::add_ints_attr(p, "pads", n.attr_ints("pads"));
  }
  b.output("y", DType::F32, std::nullopt);
  return b.bytes();
}

// The blocked chain on the fast kernels (dynamic batch) matches the plain graph on the
// reference kernels.
TEST(ConvBlockedLayout, FastKernelsMatchReference) {
  const std::string bytes = chain_model_bytes(wide_chain(false));
  SessionOptions ref_opts;
  ref_opts.optimization = OptimizationLevel::None;
  ref_opts.fast_kernels = false;
  const Session fast = Session::from_bytes(bytes);
  const Session ref = Session::from_bytes(bytes, ref_opts);
  const auto h = fast.kernel_histogram();
  EXPECT_EQ(h.count("dnnl.conv(fp32)") ? h.at("dnnl.conv(fp32)") : 0, 2);
  EXPECT_EQ(h.count("dnnl.reorder(to_blocked16)"), 1u);
  EXPECT_EQ(h.count("dnnl.reorder(from_blocked16)"), 1u);
  for (int64_t n : {1, 2}) {
    const Tensor x = random_f32({n, kWide, 5, 7}, static_cast<uint32_t>(50 + n));
    const Tensor want = ref.run_tensors({{"x", x}})[0];
    const Tensor got = fast.run_tensors({{"x", x}})[0];
    ASSERT_EQ(got.dims(), want.dims());
    for (int64_t i = 0; i < want.numel(); ++i)
      ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i],
                  1e-4 * (1 + std::abs(want.data<float>()[i])))
          << i;
  }
}

}  // namespace
}  // namespace kpt
