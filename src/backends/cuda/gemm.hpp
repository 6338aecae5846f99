#pragma once
// GEMMs through cuBLASLt, with the epilogues transformer and CNN layers need fused into the
// product (bias, bias+GELU, bias+ReLU), and FP8 (e4m3) products with per-tensor scales.
//
// Row-major convention of the rest of kpt: C[M,N] = A[M,K] * B, with B stored [K,N] (ONNX
// MatMul) or [N,K] (b_transposed: nn.Linear's weight, Gemm with transB=1). cuBLASLt is
// column-major, so this computes C^T = B^T * A^T: no data is transposed.
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "backends/cuda/cublaslt_api.hpp"
#include "kpt/dtype.hpp"

namespace kpt::cuda {

// Operand (and output) types and how the product is computed: F32 in full fp32, TF32 with the
// tensor cores' tf32 mode on fp32 data, F16/BF16 with fp32 accumulation.
enum class GemmPrecision { F32, TF32, F16, BF16 };
// GELU is cuBLASLt's, the tanh approximation (ONNX Gelu with approximate="tanh").
enum class Epilogue { None, Bias, BiasGelu, BiasRelu, Relu };

std::string to_string(GemmPrecision p);
std::string to_string(Epilogue e);

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  bool b_transposed = false;
  // Products of one A with `batch` B matrices stored back to back ([batch, K, N]), into C
  // [batch, M, N] with bias [batch, N]: sibling projections of one input in one launch.
  int64_t batch = 1;
};

// FP8 product: A [M,K] and B [N,K] (B must be transposed: the only layout cuBLASLt's FP8
// kernels take) as e4m3 with one float scale each, read from device memory so that scales a
// calibration computed on the device need no round trip. C = a_scale * b_scale * (A * B^T)
// (+ bias, + activation), written as `out`: F16 or BF16, or F8E4M3FN (then saturated to
// e4m3 after multiplying by `d_scale`, the inverse of the scale its reader dequantizes with,
// and `bias` is f16: an FP8 product that feeds another, e.g. BERT's FFN-in into FFN-out).
struct Fp8GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  const float* a_scale = nullptr;
  const float* b_scale = nullptr;
  void* c = nullptr;
  DType out = DType::BF16;
  const void* bias = nullptr;      // [N], of type `out` (f16 when `out` is e4m3)
  const float* d_scale = nullptr;  // `out` e4m3 only
  // `out` e4m3 only: what is passed as cuBLASLt's C (f16 layout; beta is 0, so never read):
  // nullptr passes the output's own pointer (as PyTorch's _scaled_mm does). Callers that find
  // that refused (Fp8ProductKernel's probe) pass separate memory.
  const void* c_operand = nullptr;
  Epilogue epilogue = Epilogue::None;
  // Accumulates partial products in the tensor cores' own precision between K blocks: faster,
  // slightly less accurate (PyTorch's _scaled_mm use_fast_accum).
  bool fast_accum = false;
  // Products of one A with `batch` B matrices stored back to back ([batch, N, K]) into C
  // [batch, M, N], bias [batch, N]; one b_scale for all of them (sibling projections).
  int64_t batch = 1;
};

class CublasLtGemm {
 public:
  // `tune`: each problem's first run outside a CUDA graph capture times cuBLASLt's candidate
  // algorithms (up to kTuneCandidates from its heuristic) on the real operands and keeps the
  // fastest; otherwise the heuristic's first is used.
  explicit CublasLtGemm(bool tune = true, size_t workspace_bytes = size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // C = act(alpha * A * B + R + bias[N]), R the optional `residual` of C's shape and type (read
  // as cuBLASLt's C with beta = 1; C is written as its D). Types follow `precision`; bias has
  // C's type.
  void run(GemmPrecision precision, const GemmShape& shape, const void* a, const void* b, void* c,
           cudaStream_t stream, const void* bias = nullptr, Epilogue epilogue = Epilogue::None,
           float alpha = 1.0f, const void* residual = nullptr);
  void run_fp8(const Fp8GemmArgs& args, cudaStream_t stream);

  // How many distinct problems have a cached plan (descriptor, layouts, chosen algorithm).
  size_t cached_plans() const { return plans_.size(); }
  static constexpr int kTuneCandidates = 16;
  // What tuning found so far, one line for the device report ("" before any plan).
  std::string tuning_summary() const;

 private:
  struct Plan;
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool, int, bool, int64_t>;
  Plan& plan_for(const Key& key, int kind, const GemmShape& shape, Epilogue epilogue,
                 DType out_dtype, bool fast_accum);
  cublasStatus_t matmul(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const void* a,
                        const void* b, void* c, const void* c_operand, float alpha, float beta,
                        cudaStream_t stream);
  void tune(Plan& plan, const void* a, const void* b, void* c, const void* c_operand, float alpha,
            float beta, cudaStream_t stream);
  void execute(Plan& plan, const void* a, const void* b, void* c, const void* bias,
               const float* a_scale, const float* b_scale, float alpha, cudaStream_t stream,
               const float* d_scale = nullptr, const void* c_operand = nullptr, float beta = 0.0f);

  const CublasLtApi& api_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool tune_ = true;
  mutable std::mutex mu_;
  std::map<Key, Plan*> plans_;
};

}  // namespace kpt::cuda
