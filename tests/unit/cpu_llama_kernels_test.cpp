// Fast SwiGLU and RotaryEmbedding kernels against the reference kernels on fresh random inputs.
#include <gtest/gtest.h>

#include <random>

#include "backends/cpu/kernel_registry.hpp"
#include "ops/run_node.hpp"

namespace kpt {
namespace {

Tensor random_f32(const Dims& dims, std::mt19937& rng, float lo = -3, float hi = 3) {
  Tensor t(DType::F32, dims);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

ir::Node make_node(const std::string& op, size_t inputs, std::vector<ir::Attribute> attrs = {}) {
  ir::Node n;
  n.op_type = op;
  n.name = op + "_test";
  n.opset = 23;
  for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  n.outputs = {"y"};
  for (auto& a : attrs) n.attrs[a.name] = a;
  return n;
}

// Runs the node with the reference kernel and with the prepared fast kernel; returns both.
std::pair<Tensor, Tensor> run_both(const ir::Node& node, const std::vector<Tensor>& inputs,
                                   const std::string& expected_kernel) {
  std::vector<Value> values;
  for (const auto& t : inputs) values.push_back(Value::of(t));
  std::vector<const Value*> in;
  for (const auto& v : values) in.push_back(&v);
  cpu::PrepareContext ctx{node,
                          std::vector<const ir::Type*>(inputs.size(), nullptr),
                          std::vector<const Tensor*>(inputs.size(), nullptr),
                          {nullptr},
                          Precision::FP32};
  auto kernel = cpu::KernelRegistry::instance().prepare(ctx);
  EXPECT_NE(kernel, nullptr);
  if (!kernel) return {};
  EXPECT_EQ(kernel->name(), expected_kernel);
  Tensor ref = ops::run_node(node, in, nullptr)[0].tensor;
  Tensor fast = ops::run_node(node, in, nullptr, kernel.get())[0].tensor;
  return {ref, fast};
}

void expect_close(const Tensor& got, const Tensor& want, float tol) {
  ASSERT_EQ(got.dims(), want.dims());
  for (int64_t i = 0; i < want.numel(); ++i) {
    const float w = want.data<float>()[i], g = got.data<float>()[i];
    ASSERT_NEAR(g, w, tol * (1 + std::fabs(w))) << "element " << i;
  }
}

TEST(CpuLlamaKernels, SwiGluMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  for (const Dims& dims : {Dims{1, 128, 8192}, Dims{3, 7, 33}, Dims{5}}) {
    for (float alpha : {1.0f, 1.702f}) {
      const auto node = make_node("SwiGLU", 2, {ir::Attribute::of_float("alpha", alpha)});
      auto [ref, fast] =
          run_both(node, {random_f32(dims, rng), random_f32(dims, rng)}, "cpu.swiglu");
      expect_close(fast, ref, 1e-5f);
    }
  }
}

TEST(CpuLlamaKernels, SwiGluBroadcastFallsBackToReference) {
  std::mt19937 rng(7);
  const auto node = make_node("SwiGLU", 2);
  auto [ref, fast] = run_both(node, {random_f32({4, 8}, rng), random_f32({8}, rng)}, "cpu.swiglu");
  expect_close(fast, ref, 0);
}

TEST(CpuLlamaKernels, RotaryMatchesReferenceInEveryLayout) {
  std::mt19937 rng(std::random_device{}());
  const int64_t b = 2, h = 4, s = 9, d = 16;
  for (bool interleaved : {false, true}) {
    for (int64_t rot : {int64_t{0}, int64_t{8}}) {
      std::vector<ir::Attribute> attrs = {ir::Attribute::of_int("interleaved", interleaved ? 1 : 0),
                                          ir::Attribute::of_int("rotary_embedding_dim", rot)};
      const int64_t half = (rot == 0 ? d : rot) / 2;
      // 4-D input with position ids into a 2-D cache.
      {
        Tensor pos(DType::I64, {b, s});
        std::uniform_int_distribution<int64_t> u(0, 19);
        for (int64_t i = 0; i < pos.numel(); ++i) pos.data<int64_t>()[i] = u(rng);
        const auto node = make_node("RotaryEmbedding", 4, attrs);
        auto [ref, fast] = run_both(node,
                                    {random_f32({b, h, s, d}, rng), random_f32({20, half}, rng),
                                     random_f32({20, half}, rng), pos},
                                    "cpu.rotary_embedding");
        expect_close(fast, ref, 1e-5f);
      }
      // 3-D input with num_heads and per-batch caches, no position ids.
      {
        auto attrs3 = attrs;
        attrs3.push_back(ir::Attribute::of_int("num_heads", h));
        const auto node = make_node("RotaryEmbedding", 3, attrs3);
        auto [ref, fast] = run_both(node,
                                    {random_f32({b, s, h * d}, rng), random_f32({b, s, half}, rng),
                                     random_f32({b, s, half}, rng)},
                                    "cpu.rotary_embedding");
        expect_close(fast, ref, 1e-5f);
      }
    }
  }
}

}  // namespace
}  // namespace kpt

namespace kpt {
namespace {

TEST(CpuTranspose, HeadSplitAndMergeMatchReference) {
  std::mt19937 rng(std::random_device{}());
  const std::vector<std::vector<int64_t>> perms = {
      {0, 2, 1, 3}, {2, 0, 1, 3}, {1, 0, 2}, {1, 0, 2, 3}};
  const std::vector<Dims> shapes = {{2, 5, 3, 7}, {4, 3, 2, 16}, {6, 5, 3}, {3, 4, 5, 2}};
  for (size_t i = 0; i < perms.size(); ++i) {
    auto node = make_node("Transpose", 1, {ir::Attribute::of_ints("perm", perms[i])});
    node.opset = 13;
    auto [ref, fast] = run_both(node, {random_f32(shapes[i], rng)}, "cpu.transpose");
    expect_close(fast, ref, 0);
  }
}

}  // namespace
}  // namespace kpt
