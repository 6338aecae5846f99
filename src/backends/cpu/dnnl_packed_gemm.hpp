#pragma once
// The GEMM with a constant weight that MatMul, Gemm and MatMulBiasAct share:
//   Y[M, N] = act(op(A)[M, K] · (alpha · W)[K, N] + bias[N]) + beta · Y_before
// with W reordered once, at construction, into the layout oneDNN's kernel reads fastest (and
// converted to bf16, or quantized to s8 per column, by precision). M varies per run; the
// primitive for each M is created once and kept under the session's plan policy.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/packed_weights.hpp"
#include "backends/cpu/shape_plan_cache.hpp"
#include "kpt/session.hpp"

namespace kpt::cpu {

enum class GemmPrecision { F32, BF16, INT8 };
// Auto is FP32 here: the per-layer search lives elsewhere.
GemmPrecision gemm_precision(Precision p);
const char* gemm_precision_name(GemmPrecision p);

class PackedGemm {
 public:
  struct Options {
    GemmPrecision precision = GemmPrecision::F32;
    bool weights_transposed = false;  // W stored n x k (Gemm transB)
    bool a_transposed = false;        // A stored k x m (Gemm transA)
    float alpha = 1.f;                // folded into the packed weights
    bool has_bias = false;            // a bias[N] is passed to every run
    std::optional<dnnl_util::Eltwise> activation;
    // Non-zero: Y holds C (broadcast to M x N) before the run and the result adds beta * C.
    float accumulate_beta = 0.f;
    int64_t m_hint = 128;  // rows to pick the packed layout for
    // Where packed weights are looked up first and recorded after packing (see
    // packed_weights.hpp), under keys starting with `packed_prefix`.
    PackedWeights* packed = nullptr;
    std::string packed_prefix;
  };

  PackedGemm(const float* w, int64_t k, int64_t n, Options options);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  GemmPrecision precision() const { return opt_.precision; }

  // Computes Y (m x n, row-major) from A (m x k row-major, or k x m when a_transposed).
  // Returns false, having written nothing, when oneDNN has no kernel for this M (the caller
  // then runs the reference kernel).
  bool run(const float* a, int64_t m, const float* bias, float* y) const;

 private:
  struct Plan {
    dnnl::matmul matmul;
    dnnl::memory::desc src_md;  // what the matmul reads (f32, bf16 or u8)
    size_t scratchpad_bytes = 0;
  };
  std::shared_ptr<const Plan> plan_for(int64_t m) const;
  std::shared_ptr<const Plan> make_plan(int64_t m) const;
  dnnl::memory::desc a_desc(int64_t m, dnnl::memory::data_type dt) const;
  dnnl::primitive_attr attributes() const;
  // Takes the packed weights (and int8 scales) from opt_.packed; false when they are not there.
  bool reuse_packed();
  void pack(const float* w);
  void record_packed() const;

  int64_t k_, n_;
  Options opt_;
  dnnl::memory::desc packed_md_;
  dnnl::memory packed_;  // ours, or a view of an engine file's mapping kept by packed_keeper_
  std::shared_ptr<const void> packed_keeper_;
  // int8: per-column weight scales and column sums of the quantized weights.
  std::vector<float> w_scales_;
  std::vector<int32_t> w_column_sums_;

  // (rows, threads) -> plan; nullptr where oneDNN has no kernel.
  ShapePlanCache<std::pair<int64_t, int>, Plan> plans_;
};

}  // namespace kpt::cpu
