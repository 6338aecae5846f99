#pragma once
// MatMul of two run-time tensors (attention's Q·Kᵀ and P·V): A[..., M, K] x B[..., K, N] with
// numpy broadcasting of the batch dims, as one oneDNN batched matmul in fp32, optionally with
// a bias[N] and an activation fused. Primitives are created per shape pair and kept under the
// session's plan policy (shape_plan_cache.hpp).
#include <memory>
#include <optional>
#include <tuple>

#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/shape_plan_cache.hpp"

namespace kpt::cpu {

class BatchedMatmul {
 public:
  BatchedMatmul(bool has_bias, std::optional<dnnl_util::Eltwise> activation)
      : has_bias_(has_bias), activation_(activation) {}

  // The output dims of A x B when oneDNN can run it (both rank >= 2, batch dims equal or 1,
  // inner dims equal, nothing empty); nullopt otherwise.
  static std::optional<Dims> output_dims(const Dims& a, const Dims& b);

  // Y = act(A x B + bias); dims as given (A and B of rank >= 2). Returns false, having
  // written nothing, when oneDNN has no kernel for these shapes.
  bool run(const float* a, const Dims& a_dims, const float* b, const Dims& b_dims,
           const float* bias, float* y) const;

 private:
  struct Plan {
    dnnl::matmul matmul;
    dnnl::memory::desc a_md, b_md, bias_md, y_md;
    size_t scratchpad_bytes = 0;
  };
  std::shared_ptr<const Plan> plan_for(const Dims& a, const Dims& b) const;
  std::shared_ptr<const Plan> make_plan(const Dims& a, const Dims& b) const;

  bool has_bias_;
  std::optional<dnnl_util::Eltwise> activation_;
  ShapePlanCache<std::tuple<Dims, Dims, int>, Plan> plans_;  // (A dims, B dims, threads)
};

}  // namespace kpt::cpu
