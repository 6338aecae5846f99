// The GPU executor on a small CNN built here in exporter form: Conv + BatchNormalization + Relu
// stem, MaxPool, a residual block (Conv-BN-Relu, Conv-BN, Add, Relu), a strided 1x1
// convolution, GlobalAveragePool, Flatten and Gemm. After the passes (BN folded, FusedConv with
// the residual and ReLU) every node must run on the GPU; outputs are compared with a CPU session
// on the reference kernels, on fresh random weights and inputs, with and without CUDA graphs.
#include <cmath>
#include <random>

#include "kpt/session.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt::gpu_test {
namespace {

using testing::ModelBuilder;

std::vector<float> uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// x [batch, 3, 32, 32] -> logits [batch, classes]. 10 classes take the classifier GEMM with
// its weight padded to 8 columns (gpu_kernels_padded_gemm.cpp), 16 the plain one.
std::string small_cnn(int64_t classes) {
  std::mt19937 rng(static_cast<uint32_t>(seed() + 11));
  ModelBuilder m(17);
  m.input("x", DType::F32, testing::DeclDims{-1, 3, 32, 32});
  m.output("logits", DType::F32, std::nullopt);
  auto tensor = [&](const std::string& name, const testing::DeclDims& dims, float lo, float hi) {
    size_t n = 1;
    for (int64_t d : dims) n *= static_cast<size_t>(d);
    m.initializer(name, DType::F32, dims, testing::bytes_of(uniform(rng, n, lo, hi)));
    return name;
  };
  // Conv (no bias, as exporters write it before BN) + BatchNormalization (+ Relu).
  auto conv_bn = [&](const std::string& x, int64_t cin, int64_t cout, int64_t k, int64_t stride,
                     int64_t pad, const std::string& out, bool relu) {
    const float s = 1.0f / std::sqrt(static_cast<float>(cin * k * k));
    auto& c = m.node("Conv", {x, tensor(out + ".w", {cout, cin, k, k}, -s, s)}, {out + ".c"});
    testing::add_ints_attr(c, "kernel_shape", {k, k});
    testing::add_ints_attr(c, "strides", {stride, stride});
    testing::add_ints_attr(c, "pads", {pad, pad, pad, pad});
    auto& bn =
        m.node("BatchNormalization",
               {out + ".c", tensor(out + ".g", {cout}, 0.5f, 1.5f),
                tensor(out + ".b", {cout}, -0.2f, 0.2f), tensor(out + ".m", {cout}, -0.1f, 0.1f),
                tensor(out + ".v", {cout}, 0.5f, 1.5f)},
               {relu ? out + ".bn" : out});
    testing::add_float_attr(bn, "epsilon", 1e-5f);
    if (relu) m.node("Relu", {out + ".bn"}, {out});
  };
  conv_bn("x", 3, 16, 7, 2, 3, "stem", true);          // 16x16
  auto& pool = m.node("MaxPool", {"stem"}, {"pool"});  // 8x8
  testing::add_ints_attr(pool, "kernel_shape", {3, 3});
  testing::add_ints_attr(pool, "strides", {2, 2});
  testing::add_ints_attr(pool, "pads", {1, 1, 1, 1});
  conv_bn("pool", 16, 16, 1, 1, 0, "b1", true);
  conv_bn("b1", 16, 16, 3, 1, 1, "b2", false);
  m.node("Add", {"b2", "pool"}, {"sum"});
  m.node("Relu", {"sum"}, {"block"});
  conv_bn("block", 16, 32, 1, 2, 0, "down", true);  // 4x4
  m.node("GlobalAveragePool", {"down"}, {"gap"});
  m.node("Flatten", {"gap"}, {"flat"});
  auto& fc = m.node(
      "Gemm", {"flat", tensor("fc.w", {10, 32}, -0.3f, 0.3f), tensor("fc.b", {10}, -0.1f, 0.1f)},
      {"logits"});
  testing::add_int_attr(fc, "transB", 1);
  return m.bytes();
}

void check_cnn_on_gpu(Precision precision, bool graphs, double tol, int64_t classes = 10) {
  const std::string model = small_cnn(classes);
  SessionOptions o;
  o.target = "cuda";
  o.precision = precision;
  o.cuda_graphs = graphs;
  Session gpu_session = Session::from_bytes(model, o);
  const std::string report = gpu_session.device_report();
  EXPECT_NE(report.find("cpu fallbacks 0"), std::string::npos) << report;
  EXPECT_NE(report.find("+residual+Relu) 1"), std::string::npos) << report;
  EXPECT_EQ(report.find("Blocked16"), std::string::npos) << report;
  SessionOptions reference;
  reference.fast_kernels = false;  // the reference kernels: the CPU path as ONNX defines it
  Session cpu = Session::from_bytes(model, reference);
  for (int64_t batch : {1, 3}) {
    for (int rep = 0; rep < 2; ++rep) {
      const Tensor x = random_tensor(DType::F32, {batch, 3, 32, 32});
      const Tensor want = cpu.run_tensors({{"x", x}})[0];
      const Tensor got = gpu_session.run_tensors({{"x", x}})[0];
      ASSERT_EQ(got.dtype(), DType::F32);
      expect_close(got, want, tol,
                   std::string("small CNN ") + precision_name(precision) +
                       (graphs ? " graph" : " eager") + " batch " + std::to_string(batch) +
                       " run " + std::to_string(rep));
    }
  }
}

TEST(GpuExecutorCnn, SmallCnnFp16WithCudaGraphs) {
  check_cnn_on_gpu(Precision::FP16, true, 5e-3);
}
TEST(GpuExecutorCnn, SmallCnnFp16Eager) {
  check_cnn_on_gpu(Precision::FP16, false, 5e-3);
}
TEST(GpuExecutorCnn, SmallCnnBf16WithCudaGraphs) {
  check_cnn_on_gpu(Precision::BF16, true, 3e-2);
}
TEST(GpuExecutorCnn, SmallCnnFp16SixteenClasses) {
  check_cnn_on_gpu(Precision::FP16, true, 5e-3, 16);
}

}  // namespace
}  // namespace kpt::gpu_test
