#include "backends/cuda/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"

namespace kpt::cuda {

std::string to_string(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::F32:
      return "f32";
    case GemmPrecision::TF32:
      return "tf32";
    case GemmPrecision::F16:
      return "f16";
    case GemmPrecision::BF16:
      return "bf16";
  }
  return "?";
}

std::string to_string(Epilogue e) {
  switch (e) {
    case Epilogue::None:
      return "none";
    case Epilogue::Bias:
      return "bias";
    case Epilogue::BiasGelu:
      return "bias+gelu";
    case Epilogue::BiasRelu:
      return "bias+relu";
    case Epilogue::Relu:
      return "relu";
  }
  return "?";
}

namespace {

constexpr int kFp8Kind = 4;  // plan kind beside the GemmPrecision values

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F8E4M3FN:
      return CUDA_R_8F_E4M3;
    default:
      throw Error("cuBLASLt GEMM: unsupported element type " + std::string(dtype_name(t)));
  }
}

cublasLtEpilogue_t lt_epilogue(Epilogue e) {
  switch (e) {
    case Epilogue::None:
      return CUBLASLT_EPILOGUE_DEFAULT;
    case Epilogue::Bias:
      return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::BiasGelu:
      return CUBLASLT_EPILOGUE_GELU_BIAS;
    case Epilogue::BiasRelu:
      return CUBLASLT_EPILOGUE_RELU_BIAS;
    case Epilogue::Relu:
      return CUBLASLT_EPILOGUE_RELU;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

DType out_dtype(GemmPrecision p) {
  if (p == GemmPrecision::F16) return DType::F16;
  if (p == GemmPrecision::BF16) return DType::BF16;
  return DType::F32;
}

}  // namespace

struct CublasLtGemm::Plan {
  const CublasLtApi* api = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatrixLayout_t d = nullptr;  // FP8 output only; otherwise D has C's layout
  cublasLtMatmulAlgo_t algo{};
  // The heuristic's candidates, best guess first; emptied once tuning has chosen among them.
  std::vector<cublasLtMatmulAlgo_t> candidates;
  int chosen = 0;                           // index of `algo` among the candidates
  float first_ms = 0.0f, chosen_ms = 0.0f;  // as timed when tuned
  bool tuned = false;
  bool has_bias = false;
  bool fp8 = false;
  ~Plan() {
    if (a) api->layout_destroy(a);
    if (b) api->layout_destroy(b);
    if (c) api->layout_destroy(c);
    if (d) api->layout_destroy(d);
    if (desc) api->desc_destroy(desc);
  }
};

CublasLtGemm::CublasLtGemm(bool tune, size_t workspace_bytes) : api_(cublaslt()), tune_(tune) {
  require_device();
  check_cublas(api_.create(&handle_), "cublasLtCreate");
  workspace_bytes_ = workspace_bytes;
  if (workspace_bytes_ > 0) KPT_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) delete plan;
  if (workspace_) cudaFree(workspace_);
  if (handle_) api_.destroy(handle_);
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(const Key& key, int kind, const GemmShape& shape,
                                           Epilogue epilogue, DType out_dtype, bool fast_accum) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  plan->api = &api_;
  plan->fp8 = kind == kFp8Kind;
  DType in_dtype = out_dtype;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if (plan->fp8) {
    in_dtype = DType::F8E4M3FN;
  } else if (static_cast<GemmPrecision>(kind) == GemmPrecision::TF32) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  check_cublas(api_.desc_create(&plan->desc, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // cuBLASLt's "A" is our B and its "B" our A (see gemm.hpp).
  const cublasOperation_t op_a = shape.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = CUBLAS_OP_N;
  check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
               "TRANSA");
  check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
               "TRANSB");
  const cublasLtEpilogue_t epi = lt_epilogue(epilogue);
  check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
               "EPILOGUE");
  // An e4m3 output takes C (unread: beta is 0) and bias as f16.
  const bool fp8_out = out_dtype == DType::F8E4M3FN;
  const DType c_dtype = fp8_out ? DType::F16 : out_dtype;
  plan->has_bias = epilogue != Epilogue::None && epilogue != Epilogue::Relu;
  if (plan->has_bias) {
    const cudaDataType_t bias_type = cuda_type(c_dtype);
    check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                               sizeof bias_type),
                 "BIAS_DATA_TYPE");
  }
  if (plan->fp8) {
    const int8_t fast = fast_accum ? 1 : 0;
    check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast),
                 "FAST_ACCUM");
  }
  const uint64_t m = static_cast<uint64_t>(shape.m), n = static_cast<uint64_t>(shape.n),
                 k = static_cast<uint64_t>(shape.k);
  const cudaDataType_t tin = cuda_type(in_dtype), tout = cuda_type(c_dtype);
  if (shape.b_transposed) {
    check_cublas(api_.layout_create(&plan->a, tin, k, n, static_cast<int64_t>(k)), "layout B");
  } else {
    check_cublas(api_.layout_create(&plan->a, tin, n, k, static_cast<int64_t>(n)), "layout B");
  }
  check_cublas(api_.layout_create(&plan->b, tin, k, m, static_cast<int64_t>(k)), "layout A");
  check_cublas(api_.layout_create(&plan->c, tout, n, m, static_cast<int64_t>(n)), "layout C");
  if (fp8_out)
    check_cublas(api_.layout_create(&plan->d, cuda_type(out_dtype), n, m, static_cast<int64_t>(n)),
                 "layout D");
  if (shape.batch > 1) {
    // cuBLASLt's A (our B) and C step by one matrix per batch; its B (our A) is shared.
    const auto count = static_cast<int32_t>(shape.batch);
    const int64_t b_stride = shape.k * shape.n, a_stride = 0, c_stride = shape.m * shape.n;
    for (auto [layout, stride] : {std::pair{plan->a, b_stride}, std::pair{plan->b, a_stride},
                                  std::pair{plan->c, c_stride}}) {
      check_cublas(
          api_.layout_set(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
          "BATCH_COUNT");
      check_cublas(api_.layout_set(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                   sizeof stride),
                   "STRIDED_BATCH_OFFSET");
    }
    if (plan->has_bias) {
      const int64_t bias_stride = shape.n;
      check_cublas(api_.desc_set(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                 sizeof bias_stride),
                   "BIAS_BATCH_STRIDE");
    }
  }

  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(api_.pref_create(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = workspace_bytes_;
  api_.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t results[kTuneCandidates] = {};
  int found = 0;
  const cublasStatus_t st =
      api_.heuristic(handle_, plan->desc, plan->a, plan->b, plan->c, plan->d ? plan->d : plan->c,
                     pref, tune_ ? kTuneCandidates : 1, results, &found);
  api_.pref_destroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw Error("cuBLASLt has no algorithm for " +
                (plan->fp8 ? std::string("fp8") : to_string(static_cast<GemmPrecision>(kind))) +
                " GEMM " + std::to_string(shape.m) + "x" + std::to_string(shape.n) + "x" +
                std::to_string(shape.k) + " with epilogue " + to_string(epilogue) + " (status " +
                std::to_string(static_cast<int>(st)) + ")");
  plan->algo = results[0].algo;
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan->candidates.push_back(results[i].algo);
  }
  if (plan->candidates.size() < 2) plan->candidates.clear();
  Plan* p = plan.release();
  plans_[key] = p;
  return *p;
}

void CublasLtGemm::execute(Plan& plan, const void* a, const void* b, void* c, const void* bias,
                           const float* a_scale, const float* b_scale, float alpha,
                           cudaStream_t stream, const float* d_scale, const void* c_operand,
                           float beta) {
  if (plan.has_bias) {
    if (!bias) throw Error("cuBLASLt GEMM: the epilogue needs a bias");
    check_cublas(api_.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 "BIAS_POINTER");
  }
  if (plan.fp8) {
    // cuBLASLt's A is our B.
    check_cublas(
        api_.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &b_scale, sizeof b_scale),
        "A_SCALE_POINTER");
    check_cublas(
        api_.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &a_scale, sizeof a_scale),
        "B_SCALE_POINTER");
  }
  if (plan.d) {
    if (!d_scale) throw Error("FP8 GEMM: an e4m3 output needs d_scale");
    check_cublas(
        api_.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, &d_scale, sizeof d_scale),
        "D_SCALE_POINTER");
  }
  if (!plan.candidates.empty()) tune(plan, a, b, c, c_operand, alpha, beta, stream);
  check_cublas(matmul(plan, plan.algo, a, b, c, c_operand, alpha, beta, stream), "cublasLtMatmul");
}

// One cuBLASLt launch of the plan with `algo` (cuBLASLt's A is our B; C is `c_operand` or the
// output itself).
cublasStatus_t CublasLtGemm::matmul(const Plan& plan, const cublasLtMatmulAlgo_t& algo,
                                    const void* a, const void* b, void* c, const void* c_operand,
                                    float alpha, float beta, cudaStream_t stream) {
  return api_.matmul(handle_, plan.desc, &alpha, b, plan.a, a, plan.b, &beta,
                     c_operand ? c_operand : c, plan.c, c, plan.d ? plan.d : plan.c, &algo,
                     workspace_, workspace_bytes_, stream);
}

// Times each candidate on the real operands (the output is rewritten by every trial and then
// by the caller's run). Not where the result would change between trials (C read with beta
// != 0 from D's own memory) and not inside a graph capture (events cannot be timed there):
// those keep the heuristic's first until a run that can tune.
//
// Kernels of tens of microseconds time with a few percent of noise, and the clocks move while
// the first trials run: every candidate is warmed up, then timed in interleaved rounds (so a
// drift touches all alike), each keeping its best round; another candidate replaces the
// heuristic's first only when it is at least kMargin faster.
void CublasLtGemm::tune(Plan& plan, const void* a, const void* b, void* c, const void* c_operand,
                        float alpha, float beta, cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KPT_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;
  const void* c_in = c_operand ? c_operand : c;
  if (beta != 0.0f && c_in == c) {
    plan.candidates.clear();
    return;
  }
  constexpr int kRounds = 3, kReps = 4;
  constexpr float kMargin = 0.03f;
  const size_t count = plan.candidates.size();
  auto launch = [&](size_t i) {
    return matmul(plan, plan.candidates[i], a, b, c, c_operand, alpha, beta, stream) ==
           CUBLAS_STATUS_SUCCESS;
  };
  std::vector<bool> runs(count);
  for (size_t i = 0; i < count; ++i) runs[i] = launch(i) && launch(i);  // refused: skipped
  std::vector<float> best(count, std::numeric_limits<float>::infinity());
  cudaEvent_t start = nullptr, stop = nullptr;
  KPT_CUDA_CHECK(cudaEventCreate(&start));
  KPT_CUDA_CHECK(cudaEventCreate(&stop));
  for (int round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < count; ++i) {
      if (!runs[i]) continue;
      KPT_CUDA_CHECK(cudaEventRecord(start, stream));
      for (int r = 0; r < kReps && runs[i]; ++r) runs[i] = launch(i);
      KPT_CUDA_CHECK(cudaEventRecord(stop, stream));
      KPT_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      KPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (runs[i]) best[i] = std::min(best[i], ms / kReps);
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  size_t chosen = 0;
  for (size_t i = 1; i < count; ++i) {
    if (runs[i] && best[i] < best[chosen]) chosen = i;
  }
  if (chosen != 0 && runs[0] && best[chosen] > (1.0f - kMargin) * best[0]) chosen = 0;
  plan.algo = plan.candidates[chosen];
  plan.chosen = static_cast<int>(chosen);
  plan.first_ms = std::isfinite(best[0]) ? best[0] : 0.0f;
  plan.chosen_ms = std::isfinite(best[chosen]) ? best[chosen] : plan.first_ms;
  plan.candidates.clear();
  plan.tuned = true;
}

std::string CublasLtGemm::tuning_summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (plans_.empty()) return "";
  int tuned = 0, changed = 0;
  double first = 0, chosen = 0;
  for (const auto& [key, plan] : plans_) {
    if (!plan->tuned) continue;
    ++tuned;
    if (plan->chosen > 0) ++changed;
    first += plan->first_ms;
    chosen += plan->chosen_ms;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%zu cuBLASLt plans, %d tuned (fastest of up to %d candidates): %d changed from "
                "the heuristic's first, %.1f us -> %.1f us over the tuned problems",
                plans_.size(), tuned, kTuneCandidates, changed, first * 1e3, chosen * 1e3);
  return buf;
}

void CublasLtGemm::run(GemmPrecision precision, const GemmShape& shape, const void* a,
                       const void* b, void* c, cudaStream_t stream, const void* bias,
                       Epilogue epilogue, float alpha, const void* residual) {
  if (shape.m <= 0 || shape.n <= 0 || shape.k <= 0 || shape.batch <= 0)
    throw Error("cuBLASLt GEMM needs positive M, N, K and batch");
  const Key key{static_cast<int>(precision), shape.m, shape.n,    shape.k, shape.b_transposed,
                static_cast<int>(epilogue),  false,   shape.batch};
  std::lock_guard<std::mutex> lock(mu_);
  Plan& plan =
      plan_for(key, static_cast<int>(precision), shape, epilogue, out_dtype(precision), false);
  // The residual is cuBLASLt's C, read with beta = 1.
  execute(plan, a, b, c, bias, nullptr, nullptr, alpha, stream, nullptr, residual,
          residual ? 1.0f : 0.0f);
}

void CublasLtGemm::run_fp8(const Fp8GemmArgs& args, cudaStream_t stream) {
  if (args.m <= 0 || args.n <= 0 || args.k <= 0 || args.batch <= 0)
    throw Error("FP8 GEMM needs positive M, N, K and batch");
  // cuBLASLt's FP8 kernels reject other shapes at launch (CUBLAS_STATUS_NOT_SUPPORTED, seen on
  // an H200 with M = 200); callers pad M (tokens) to a multiple of 16.
  if (args.m % 16 != 0 || args.k % 16 != 0 || args.n % 16 != 0)
    throw Error("FP8 GEMM needs M, N and K to be multiples of 16, got " + std::to_string(args.m) +
                "x" + std::to_string(args.n) + "x" + std::to_string(args.k));
  if (args.out != DType::BF16 && args.out != DType::F16 && args.out != DType::F8E4M3FN)
    throw Error("FP8 GEMM writes f16, bf16 or e4m3");
  if (!args.a_scale || !args.b_scale) throw Error("FP8 GEMM needs both scales");
  const GemmShape shape{args.m, args.n, args.k, true, args.batch};
  const int out_code = args.out == DType::BF16 ? 0 : args.out == DType::F16 ? 1 : 2;
  const Key key{kFp8Kind + out_code * 8,         args.m,          args.n,    args.k, true,
                static_cast<int>(args.epilogue), args.fast_accum, args.batch};
  std::lock_guard<std::mutex> lock(mu_);
  Plan& plan = plan_for(key, kFp8Kind, shape, args.epilogue, args.out, args.fast_accum);
  execute(plan, args.a, args.b, args.c, args.bias, args.a_scale, args.b_scale, 1.0f, stream,
          args.d_scale, args.out == DType::F8E4M3FN ? args.c_operand : nullptr);
}

}  // namespace kpt::cuda
