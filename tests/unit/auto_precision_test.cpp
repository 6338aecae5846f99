#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "backends/cpu/kernel_registry.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

// A test-only op y = 3x with kernels at three precisions: fp32 exact but slow, bf16 rounded
// (cosine ~0.99999) and fast, int8 coarse (cosine well below the layer floor) and fastest.
float round_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
  std::memcpy(&v, &u, 4);
  return v;
}

void triple_reference(ops::KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor y(x.dtype(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = 3 * x.data<float>()[i];
  ctx.set_output(0, y);
}
KPT_REGISTER_OP("kpt.test", "Triple", 1, triple_reference);

class TripleKernel : public ops::Kernel {
 public:
  explicit TripleKernel(Precision p) : p_(p) {}
  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor y(x.dtype(), x.dims());
    const auto spin = std::chrono::microseconds(p_ == Precision::FP32   ? 400
                                                : p_ == Precision::BF16 ? 100
                                                                        : 20);
    const auto until = std::chrono::steady_clock::now() + spin;
    while (std::chrono::steady_clock::now() < until) {
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = 3 * x.data<float>()[i];
      y.data<float>()[i] = p_ == Precision::FP32   ? v
                           : p_ == Precision::BF16 ? round_bf16(v)
                                                   : std::round(v);
    }
    ctx.set_output(0, y);
  }
  std::string name() const override {
    return std::string("test.triple(") + precision_name(p_) + ")";
  }

 private:
  Precision p_;
};
std::unique_ptr<ops::Kernel> prepare_triple(const cpu::PrepareContext& ctx) {
  return std::make_unique<TripleKernel>(ctx.precision == Precision::Auto ? Precision::FP32
                                                                         : ctx.precision);
}
KPT_REGISTER_CPU_KERNEL("kpt.test", "Triple", prepare_triple);

std::string two_layer_model() {
  testing::ModelBuilder m(17);
  m.opset("kpt.test", 1);
  m.input("x", DType::F32, testing::DeclDims{-1, 64});
  m.node("Triple", {"x"}, {"a"}, "first", "kpt.test");
  m.node("Triple", {"a"}, {"y"}, "second", "kpt.test");
  m.output("y", DType::F32, testing::DeclDims{-1, 64});
  return m.bytes();
}

TEST(AutoPrecision, PicksTheFastestLayerKernelWithinTheBudget) {
  SessionOptions o;
  o.precision = Precision::Auto;
  Session s = Session::from_bytes(two_layer_model(), o);
  const auto h = s.kernel_histogram();
  EXPECT_EQ(h.count("test.triple(bf16)") ? h.at("test.triple(bf16)") : 0, 2)
      << s.precision_report();
  EXPECT_NE(s.precision_report().find("bf16: cosine"), std::string::npos) << s.precision_report();
  EXPECT_NE(s.precision_report().find("output y: cosine"), std::string::npos);
}

TEST(AutoPrecision, WholeModelCheckSendsLayersBackToFp32) {
  SessionOptions o;
  o.precision = Precision::Auto;
  o.accuracy_budget = 0.9999999999;  // tighter than bf16 rounding allows
  Session s = Session::from_bytes(two_layer_model(), o);
  const auto h = s.kernel_histogram();
  EXPECT_EQ(h.count("test.triple(fp32)") ? h.at("test.triple(fp32)") : 0, 2)
      << s.precision_report();
  EXPECT_NE(s.precision_report().find("moved up"), std::string::npos) << s.precision_report();
  // fp32 kernels: outputs exact.
  Tensor x(DType::F32, {2, 64});
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  Tensor y = s.run_tensors({{"x", x}})[0];
  for (int64_t i = 0; i < x.numel(); ++i)
    ASSERT_FLOAT_EQ(y.data<float>()[i], 9 * x.data<float>()[i]);
}

TEST(AutoPrecision, FixedPrecisionsDoNotCalibrate) {
  SessionOptions o;
  o.precision = Precision::BF16;
  Session s = Session::from_bytes(two_layer_model(), o);
  EXPECT_TRUE(s.precision_report().empty());
  EXPECT_EQ(s.kernel_histogram().at("test.triple(bf16)"), 2);
}

}  // namespace
}  // namespace kpt
