// The fast convolution and pooling kernels against the reference kernels, on fresh random
// inputs and weights: each model runs once with fast kernels and once with reference kernels
// only (no optimizer, so the node under test is the one that runs).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

using testing::DeclDims;
using testing::ModelBuilder;

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = u(rng);
  return v;
}

Tensor random_tensor(const Dims& dims, uint32_t seed) {
  Tensor t(DType::F32, dims);
  const auto v = random_values(t.numel(), seed);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

int64_t count(const DeclDims& d) {
  int64_t n = 1;
  for (auto x : d) n *= x;
  return n;
}

void add_weight(ModelBuilder& b, const std::string& name, const DeclDims& dims, uint32_t seed) {
  b.initializer(name, DType::F32, dims, testing::bytes_of(random_values(count(dims), seed)));
}

void add_string_attr(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

void add_floats_attr(onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float f : v) a->add_floats(f);
}

SessionOptions options(bool fast, Precision precision = Precision::FP32) {
  SessionOptions o;
  o.optimization = OptimizationLevel::None;
  o.fast_kernels = fast;
  o.precision = precision;
  return o;
}

// Runs `bytes` with and without fast kernels on `inputs`, expects `kernel` to have run in the
// fast session, and compares the outputs within rtol (relative to 1 + |reference|).
void expect_matches(const std::string& bytes, const std::map<std::string, Tensor>& inputs,
                    const std::string& kernel, double rtol = 1e-4,
                    Precision precision = Precision::FP32) {
  const Session fast = Session::from_bytes(bytes, options(true, precision));
  const Session ref = Session::from_bytes(bytes, options(false));
  EXPECT_EQ(fast.kernel_histogram().count(kernel), 1u) << "kernel " << kernel << " did not run";
  const auto got = fast.run_tensors(inputs);
  const auto want = ref.run_tensors(inputs);
  ASSERT_EQ(got.size(), want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    ASSERT_EQ(got[o].dims(), want[o].dims());
    int bad = 0;
    for (int64_t i = 0; i < want[o].numel() && bad < 5; ++i) {
      const float w = want[o].data<float>()[i], g = got[o].data<float>()[i];
      if (!(std::abs(w - g) <= rtol * (1 + std::abs(w)))) {
        ADD_FAILURE() << "output " << o << " element " << i << ": fast " << g << ", reference "
                      << w;
        ++bad;
      }
    }
  }
}

struct ConvCase {
  DeclDims x, w;
  bool bias = true;
  int64_t group = 1;
  std::vector<int64_t> strides = {}, pads = {}, dilations = {};
  std::string auto_pad = "";
};

std::string conv_model(const ConvCase& c, const std::string& op = "Conv",
                       const std::string& activation = "", bool z = false,
                       const std::vector<float>& params = {}, bool dynamic_batch = false) {
  ModelBuilder b(17);
  DeclDims xd = c.x;
  if (dynamic_batch) xd[0] = -1;
  b.input("x", DType::F32, xd);
  add_weight(b, "w", c.w, 7);
  std::vector<std::string> in = {"x", "w"};
  if (c.bias) {
    add_weight(b, "b", {c.w[0]}, 8);
    in.push_back("b");
  }
  if (z) {
    if (!c.bias) in.push_back("");
    in.push_back("z");
  }
  auto& n = b.node(op, in, {"y"}, "", op == "FusedConv" ? "com.microsoft" : "");
  if (op == "FusedConv") {
    b.opset("com.microsoft", 1);
    add_string_attr(n, "activation", activation);
    if (!params.empty()) add_floats_attr(n, "activation_params", params);
  }
  if (c.group != 1) testing::add_int_attr(n, "group", c.group);
  if (!c.strides.empty()) testing::add_ints_attr(n, "strides", c.strides);
  if (!c.pads.empty()) testing::add_ints_attr(n, "pads", c.pads);
  if (!c.dilations.empty()) testing::add_ints_attr(n, "dilations", c.dilations);
  if (!c.auto_pad.empty()) add_string_attr(n, "auto_pad", c.auto_pad);
  b.output("y", DType::F32, std::nullopt);
  if (z) b.input("z", DType::F32, std::nullopt);
  return b.bytes();
}

// The output dims of a case, from a reference run.
Dims output_dims(const std::string& bytes, const Tensor& x) {
  return Session::from_bytes(bytes, options(false)).run_tensors({{"x", x}})[0].dims();
}

void check_conv(const ConvCase& c, double rtol = 1e-4) {
  const std::string bytes = conv_model(c);
  expect_matches(bytes, {{"x", random_tensor(c.x, 3)}}, "dnnl.conv(fp32)", rtol);
}

TEST(CpuConv, OneByOne) {
  check_conv({{2, 32, 9, 9}, {48, 32, 1, 1}});
}

TEST(CpuConv, ThreeByThreeStrideTwo) {
  check_conv({{1, 16, 15, 15}, {32, 16, 3, 3}, true, 1, {2, 2}, {1, 1, 1, 1}});
}

TEST(CpuConv, SevenBySevenPadThreeStrideTwo) {
  check_conv({{1, 3, 32, 32}, {16, 3, 7, 7}, true, 1, {2, 2}, {3, 3, 3, 3}});
}

TEST(CpuConv, WithoutBiasAndAsymmetricPads) {
  check_conv({{1, 8, 11, 13}, {8, 8, 3, 2}, false, 1, {1, 2}, {0, 1, 2, 0}});
}

TEST(CpuConv, Groups) {
  check_conv({{1, 32, 10, 10}, {64, 8, 3, 3}, true, 4, {}, {1, 1, 1, 1}});
}

TEST(CpuConv, Depthwise) {
  check_conv({{2, 32, 12, 12}, {32, 1, 3, 3}, true, 32, {1, 1}, {1, 1, 1, 1}});
}

TEST(CpuConv, Dilation) {
  check_conv({{1, 8, 16, 16}, {16, 8, 3, 3}, true, 1, {}, {2, 2, 2, 2}, {2, 2}});
}

TEST(CpuConv, AutoPadSame) {
  check_conv({{1, 8, 9, 10}, {8, 8, 4, 3}, true, 1, {2, 2}, {}, {}, "SAME_UPPER"});
  check_conv({{1, 8, 9, 10}, {8, 8, 4, 3}, true, 1, {2, 2}, {}, {}, "SAME_LOWER"});
}

TEST(CpuConv, OneDimensional) {
  check_conv({{2, 8, 20}, {12, 8, 5}, true, 1, {2}, {2, 1}});
}

// Wide 3x3 stride-1 layers take oneDNN's Winograd path: a different rounding, same result.
TEST(CpuConv, WideThreeByThree) {
  check_conv({{1, 64, 14, 14}, {64, 64, 3, 3}, true, 1, {}, {1, 1, 1, 1}}, 1e-4);
}

// One prepared kernel serves every batch size (one oneDNN primitive per input shape).
TEST(CpuConv, DynamicBatchRunsEachShape) {
  const ConvCase c{{1, 16, 8, 8}, {16, 16, 3, 3}, true, 1, {}, {1, 1, 1, 1}};
  const std::string bytes = conv_model(c, "Conv", "", false, {}, true);
  for (int64_t n : {1, 3, 2})
    expect_matches(bytes, {{"x", random_tensor({n, 16, 8, 8}, static_cast<uint32_t>(n))}},
                   "dnnl.conv(fp32)");
}

TEST(CpuConv, FusedConvResidualAndRelu) {
  const ConvCase c{{2, 16, 10, 10}, {32, 16, 3, 3}, true, 1, {}, {1, 1, 1, 1}};
  const std::string bytes = conv_model(c, "FusedConv", "Relu", true);
  const Tensor x = random_tensor(c.x, 3);
  const Tensor z = random_tensor(output_dims(conv_model(c), x), 4);
  expect_matches(bytes, {{"x", x}, {"z", z}}, "dnnl.conv(fp32)");
}

TEST(CpuConv, FusedConvResidualWithoutBiasOrActivation) {
  const ConvCase c{{1, 16, 9, 9}, {16, 16, 1, 1}, false};
  const std::string bytes = conv_model(c, "FusedConv", "", true);
  const Tensor x = random_tensor(c.x, 5);
  const Tensor z = random_tensor(output_dims(conv_model(c), x), 6);
  expect_matches(bytes, {{"x", x}, {"z", z}}, "dnnl.conv(fp32)");
}

TEST(CpuConv, FusedConvActivations) {
  const ConvCase c{{1, 8, 7, 7}, {16, 8, 3, 3}, true, 1, {}, {1, 1, 1, 1}};
  const Tensor x = random_tensor(c.x, 9);
  for (const auto& [act, params] :
       std::vector<std::pair<std::string, std::vector<float>>>{{"Relu", {}},
                                                               {"LeakyRelu", {0.1f}},
                                                               {"Sigmoid", {}},
                                                               {"Tanh", {}},
                                                               {"Clip", {-0.5f, 0.7f}}}) {
    SCOPED_TRACE(act);
    expect_matches(conv_model(c, "FusedConv", act, false, params), {{"x", x}}, "dnnl.conv(fp32)");
  }
}

// bf16 inputs and weights (8 significant bits), fp32 accumulation: each of the 288 products
// carries up to 2^-8 relative error, so outputs (spread ~5) differ by a few hundredths.
TEST(CpuConv, Bf16WithinBf16Rounding) {
  const ConvCase c{{1, 32, 12, 12}, {32, 32, 3, 3}, true, 1, {}, {1, 1, 1, 1}};
  const Session fast = Session::from_bytes(conv_model(c), options(true, Precision::BF16));
  if (fast.kernel_histogram().count("dnnl.conv(bf16)") == 0)
    GTEST_SKIP() << "this CPU has no oneDNN bf16 convolution";
  expect_matches(conv_model(c), {{"x", random_tensor(c.x, 3)}}, "dnnl.conv(bf16)", 0.1,
                 Precision::BF16);
}

struct PoolCase {
  std::string op;
  DeclDims x;
  std::vector<int64_t> kernel = {}, strides = {}, pads = {};
  int64_t ceil_mode = 0, count_include_pad = 0;
};

std::string pool_model(const PoolCase& c) {
  ModelBuilder b(19);
  b.input("x", DType::F32, c.x);
  auto& n = b.node(c.op, {"x"}, {"y"});
  if (!c.kernel.empty()) testing::add_ints_attr(n, "kernel_shape", c.kernel);
  if (!c.strides.empty()) testing::add_ints_attr(n, "strides", c.strides);
  if (!c.pads.empty()) testing::add_ints_attr(n, "pads", c.pads);
  if (c.ceil_mode) testing::add_int_attr(n, "ceil_mode", 1);
  if (c.count_include_pad) testing::add_int_attr(n, "count_include_pad", 1);
  b.output("y", DType::F32, std::nullopt);
  return b.bytes();
}

void check_pool(const PoolCase& c, const std::string& kernel) {
  SCOPED_TRACE(c.op);
  expect_matches(pool_model(c), {{"x", random_tensor(c.x, 21)}}, kernel, 1e-6);
}

TEST(CpuPool, MaxPool) {
  check_pool({"MaxPool", {2, 16, 23, 23}, {3, 3}, {2, 2}, {1, 1, 1, 1}}, "cpu.maxpool");
  check_pool({"MaxPool", {1, 4, 10, 9}, {3, 2}, {2, 2}, {0, 1, 1, 0}, 1}, "cpu.maxpool");
  check_pool({"MaxPool", {1, 4, 8, 8}, {2, 2}, {}, {}}, "cpu.maxpool");
}

TEST(CpuPool, AveragePool) {
  check_pool({"AveragePool", {2, 8, 13, 12}, {3, 3}, {2, 2}, {1, 1, 1, 1}}, "cpu.avgpool");
  check_pool({"AveragePool", {1, 8, 13, 12}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 1}, "cpu.avgpool");
  check_pool({"AveragePool", {1, 8, 10, 11}, {3, 3}, {2, 2}, {1, 0, 0, 1}, 1, 1}, "cpu.avgpool");
  check_pool({"AveragePool", {1, 8, 10, 11}, {3, 3}, {2, 2}, {1, 0, 0, 1}, 1, 0}, "cpu.avgpool");
}

TEST(CpuPool, GlobalPools) {
  check_pool({"GlobalAveragePool", {2, 64, 7, 7}}, "cpu.global_avgpool");
  check_pool({"GlobalAveragePool", {1, 3, 61, 67}}, "cpu.global_avgpool");
  check_pool({"GlobalMaxPool", {2, 16, 5, 9}}, "cpu.global_maxpool");
}

// MaxPool's Indices output stays with the reference kernel.
TEST(CpuPool, MaxPoolWithIndicesUsesReference) {
  ModelBuilder b(12);
  b.input("x", DType::F32, DeclDims{1, 2, 6, 6});
  auto& n = b.node("MaxPool", {"x"}, {"y", "i"});
  testing::add_ints_attr(n, "kernel_shape", {2, 2});
  b.output("y", DType::F32, std::nullopt);
  b.output("i", DType::I64, std::nullopt);
  const Session s = Session::from_bytes(b.bytes(), options(true));
  EXPECT_EQ(s.kernel_histogram().count("cpu.maxpool"), 0u);
  EXPECT_EQ(s.kernel_histogram().count("reference:MaxPool"), 1u);
}

}  // namespace
}  // namespace kpt

namespace kpt {
namespace {

// A prepared kernel is shared by every run of its session: runs from several threads at once
// (each with its own oneDNN stream and scratch memory) give each thread its own right answer.
TEST(CpuConv, ConcurrentRunsOfOneSession) {
  const ConvCase c{{1, 32, 12, 12}, {32, 32, 3, 3}, true, 1, {}, {1, 1, 1, 1}};
  const std::string bytes = conv_model(c, "FusedConv", "Relu", false, {}, true);
  const Session fast = Session::from_bytes(bytes, options(true));
  const Session ref = Session::from_bytes(bytes, options(false));
  std::vector<Tensor> inputs, want;
  for (int t = 0; t < 4; ++t) {
    inputs.push_back(random_tensor({1 + t % 2, 32, 12, 12}, static_cast<uint32_t>(100 + t)));
    want.push_back(ref.run_tensors({{"x", inputs.back()}})[0]);
  }
  std::vector<Tensor> got(inputs.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < inputs.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) got[t] = fast.run_tensors({{"x", inputs[t]}})[0];
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < inputs.size(); ++t) {
    ASSERT_EQ(got[t].dims(), want[t].dims());
    for (int64_t i = 0; i < want[t].numel(); ++i)
      ASSERT_NEAR(got[t].data<float>()[i], want[t].data<float>()[i],
                  1e-4 * (1 + std::abs(want[t].data<float>()[i])))
          << "thread " << t << " element " << i;
  }
}

}  // namespace
}  // namespace kpt
