// Binary element-wise kernels with broadcasting against the reference kernels: operands of the
// output's shape, operands repeated over leading axes (bias, position embeddings: the periodic
// fast path, 16-byte vectors where sizes allow, element by element where not), scalars, and
// broadcasts of other forms (the general per-axis path).
#include "backends/cuda/elementwise.hpp"

#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

struct Case {
  Dims a, b;
};

const Case kCases[] = {
    {{2, 3, 8, 16}, {2, 3, 8, 16}},  // same shape
    {{4, 6, 768}, {768}},            // bias over rows (vectorized)
    {{4, 6, 768}, {1, 6, 768}},      // position embeddings over the batch (vectorized)
    {{1, 6, 768}, {4, 6, 768}},      // the repeated operand first
    {{3, 5, 7}, {7}},                // period not a multiple of the vector: element by element
    {{3, 5, 7}, {}},                 // scalar
    {{4, 1, 16}, {1, 6, 1}},         // both broadcast: general path
    {{5, 7}, {5, 1}},                // last axis broadcast: general path
};

TEST(CudaElementwise, BinaryBroadcastsMatchReference) {
  auto& g = gpu();
  const std::pair<cuda::BinaryOp, const char*> ops[] = {{cuda::BinaryOp::Add, "Add"},
                                                        {cuda::BinaryOp::Sub, "Sub"},
                                                        {cuda::BinaryOp::Mul, "Mul"},
                                                        {cuda::BinaryOp::Div, "Div"},
                                                        {cuda::BinaryOp::Max, "Max"}};
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    for (const Case& c : kCases) {
      for (const auto& [op, name] : ops) {
        const Tensor a = random_tensor(dt, c.a, 0.5f, 2.0f), b = random_tensor(dt, c.b, 0.5f, 2.0f);
        const Dims* shapes[] = {&c.a, &c.b};
        Dims out_dims;
        const cuda::BroadcastLayout l = cuda::broadcast_layout(shapes, 2, out_dims);
        const auto da = g.upload(a), db = g.upload(b);
        auto dy = g.poisoned(dt, out_dims);
        cuda::binary(op, dt, da.data(), db.data(), dy.data(), l, g.stream.get());
        const Tensor want = reference(name, 14, {a, b})[0];
        expect_close(g.download(dy), want,
                     dt == DType::F32 ? 1e-6 : (dt == DType::F16 ? 1e-3 : 8e-3),
                     std::string(name) + " " + std::string(dtype_name(dt)) + " " +
                         dims_to_string(c.a) + " and " + dims_to_string(c.b));
      }
    }
  }
}

}  // namespace
}  // namespace kpt::gpu_test
