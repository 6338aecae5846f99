#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "backends/cpu/kernel_registry.hpp"
#include "kpt/session.hpp"
#include "ops/run_node.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

// A test-only op with a reference kernel and a prepared kernel that allocates its output
// through the memory plan, so the planner can be checked without depending on real kernels.
void twice_reference(ops::KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor y(x.dtype(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = 2 * x.data<float>()[i];
  ctx.set_output(0, y);
}
KPT_REGISTER_OP("kpt.test", "Twice", 1, twice_reference);

class PlannedTwice : public ops::Kernel {
 public:
  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor y = ctx.allocate_output(0, x.dtype(), x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = 2 * x.data<float>()[i];
    ctx.set_output(0, y);
  }
  std::string name() const override { return "test.twice"; }
};
std::unique_ptr<ops::Kernel> prepare_twice(const cpu::PrepareContext&) {
  return std::make_unique<PlannedTwice>();
}
KPT_REGISTER_CPU_KERNEL("kpt.test", "Twice", prepare_twice);

// Relu through the plan, in place when allowed; lowest priority so real kernels win.
class PlannedRelu : public ops::Kernel {
 public:
  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::F32) return ops::run_reference(ctx);
    Tensor y = ctx.allocate_output(0, x.dtype(), x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      y.data<float>()[i] = x.data<float>()[i] > 0 ? x.data<float>()[i] : 0;
    }
    ctx.set_output(0, y);
  }
  std::string name() const override { return "test.relu"; }
};
std::unique_ptr<ops::Kernel> prepare_relu(const cpu::PrepareContext&) {
  return std::make_unique<PlannedRelu>();
}
KPT_REGISTER_CPU_KERNEL("", "Relu", prepare_relu, -100);

Tensor random_input(uint32_t seed) {
  Tensor t(DType::F32, {4, 64});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// x -> a = Twice(x) -> r = Reshape(a) (a view of a's bytes that outlives a)
//   -> b..e: a chain of Twice/Relu whose tensors would reuse a's bytes if the view were missed
//   -> y = Add(r_flat, e); also z = Twice(e) as a second graph output straight from the arena.
std::string chain_model() {
  testing::ModelBuilder m(17);
  m.opset("kpt.test", 1);
  m.input("x", DType::F32, testing::DeclDims{4, 64});
  m.initializer("shape", DType::I64, {1}, testing::bytes_of<int64_t>({256}));
  m.initializer("back", DType::I64, {2}, testing::bytes_of<int64_t>({4, 64}));
  m.node("Twice", {"x"}, {"a"}, "twice_a", "kpt.test");
  m.node("Reshape", {"a", "shape"}, {"r"}, "reshape_r");
  m.node("Twice", {"x"}, {"b"}, "twice_b", "kpt.test");
  m.node("Relu", {"b"}, {"c"}, "relu_c");
  m.node("Twice", {"c"}, {"d"}, "twice_d", "kpt.test");
  m.node("Relu", {"d"}, {"e"}, "relu_e");
  m.node("Reshape", {"r", "back"}, {"r2"}, "reshape_back");
  m.node("Add", {"r2", "e"}, {"y"}, "add_y");
  m.node("Twice", {"e"}, {"z"}, "twice_z", "kpt.test");
  m.output("y", DType::F32, testing::DeclDims{4, 64});
  m.output("z", DType::F32, testing::DeclDims{4, 64});
  return m.bytes();
}

std::vector<Tensor> expected(const Tensor& x) {
  Tensor y(DType::F32, x.dims()), z(DType::F32, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data<float>()[i];
    const float e = 4 * std::max(0.f, v);  // relu(2 * relu(2v)) = 4 relu(v)
    y.data<float>()[i] = 2 * v + e;
    z.data<float>()[i] = 2 * e;
  }
  return {y, z};
}

void expect_equal(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].dims(), want[k].dims());
    for (int64_t i = 0; i < got[k].numel(); ++i) {
      ASSERT_FLOAT_EQ(got[k].data<float>()[i], want[k].data<float>()[i]) << "output " << k;
    }
  }
}

TEST(MemoryPlan, PlannedRunsMatchAndReuseBytes) {
  Session s = Session::from_bytes(chain_model());
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    Tensor x = random_input(seed);
    expect_equal(s.run_tensors({{"x", x}}), expected(x));
  }
  const MemoryStats m = s.memory_stats();
  EXPECT_EQ(m.plans, 1);
  EXPECT_GE(m.planned_tensors, 4);
  EXPECT_GT(m.in_place, 0);
  EXPECT_LT(m.arena_bytes, m.planned_tensor_bytes);
}

TEST(MemoryPlan, OutputsStayValidAfterLaterRuns) {
  Session s = Session::from_bytes(chain_model());
  s.run_tensors({{"x", random_input(7)}});  // records the plan
  Tensor x1 = random_input(8);
  std::vector<Tensor> first = s.run_tensors({{"x", x1}});
  s.run_tensors({{"x", random_input(9)}});
  s.run_tensors({{"x", random_input(10)}});
  expect_equal(first, expected(x1));
}

TEST(MemoryPlan, ConcurrentRunsOfOneSession) {
  Session s = Session::from_bytes(chain_model());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        Tensor x = random_input(static_cast<uint32_t>(100 * t + i));
        auto got = s.run_tensors({{"x", x}});
        auto want = expected(x);
        for (size_t k = 0; k < 2; ++k) {
          for (int64_t j = 0; j < x.numel(); ++j) {
            if (got[k].data<float>()[j] != want[k].data<float>()[j]) failures++;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(MemoryPlan, NewShapeSignatureGetsItsOwnPlan) {
  testing::ModelBuilder m(17);
  m.opset("kpt.test", 1);
  m.input("x", DType::F32, testing::DeclDims{-1, 8});
  m.node("Twice", {"x"}, {"a"}, "a", "kpt.test");
  m.node("Relu", {"a"}, {"b"}, "b");
  m.node("Twice", {"b"}, {"y"}, "y", "kpt.test");
  m.output("y", DType::F32, testing::DeclDims{-1, 8});
  Session s = Session::from_bytes(m.bytes());
  for (int64_t rows : {2, 5, 2, 5, 3}) {
    Tensor x(DType::F32, {rows, 8});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 7) - 3;
    Tensor y = s.run_tensors({{"x", x}})[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      ASSERT_FLOAT_EQ(y.data<float>()[i], 4 * std::max(0.f, x.data<float>()[i]));
    }
  }
  EXPECT_EQ(s.memory_stats().plans, 3);
}

}  // namespace
}  // namespace kpt
