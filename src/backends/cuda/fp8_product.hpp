#pragma once
// Weight GEMMs of Precision::FP8 sessions: X [..., K] times a constant weight as an FP8 e4m3
// GEMM on cuBLASLt, f16 output (+ bias, + GELU in the epilogue). The weight is quantized once at
// executor open with its own per-tensor scale (amax / 448), transposed to [N, K] (the only
// layout cuBLASLt's FP8 kernels take); the activation is quantized on each run with a static
// per-tensor scale that calibration chose (amax of X over the calibration run / 448, values
// beyond it saturate to +-448).
// Products accumulate with cuBLASLt's fast accumulation (PyTorch's _scaled_mm use_fast_accum).
//
// Stages: the plan makes the kernel (no device needed: `kpt optimize` explains FP8 plans on any
// machine); the executor loads the weight, then runs the model once in f16 with every FP8
// product observing its input (calibration), then the kernels run in FP8. A run whose rows
// (M) are not a multiple of 16 runs the product in f16 (cuBLASLt's FP8 kernels refuse it).
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <utility>

#include "backends/cuda/fp8.hpp"
#include "backends/cuda/gpu_kernel.hpp"

namespace kpt::cuda {

class Fp8ProductKernel final : public GpuKernel {
 public:
  // `weight`: the model's constant, [K, N] or, with `weight_transposed`, [N, K]; with count > 1
  // the planner's stacked sibling weights [count, K, N] (outputs: `count` values [..., N]).
  // Inputs at run: X, the f16 weight (for calibration and f16 runs), bias (if `has_bias`).
  Fp8ProductKernel(const Tensor* weight, bool weight_transposed, int64_t count, Epilogue epilogue,
                   std::string activation);
  ~Fp8ProductKernel() override;

  void run(GpuRunContext& ctx, GpuArgs& args) const override;
  std::string name() const override;

  // Quantizes the weight on the host and uploads it (synchronous; at executor open).
  void load();
  void start_calibration(cudaStream_t stream);
  void finish_calibration(cudaStream_t stream);
  bool ready() const { return stage_ == Stage::Ready; }
  // After calibration, the executor's accuracy selection: off, the product computes in f16 on
  // the f16 weight (and its producers write f16 for it); on, in FP8.
  void set_fp8(bool on);
  // Host copies of the calibrated scales (synchronize `stream`), for reports and tests.
  float activation_scale(cudaStream_t stream) const;
  float weight_scale() const { return weight_scale_host_; }

  // Plan fusions (cuda_plan.cpp) that move the quantize of X into the kernel making X:
  // whether this kernel quantizes X now (after calibration), and the scale's inverse (device),
  // what the producer multiplies by before rounding to e4m3. A producer puts its e4m3 copy of
  // X in GpuRunContext::derived under fp8_copy_key(X's value id); one that writes only e4m3
  // hands over an e4m3 buffer as X itself.
  bool quantizes_input() const { return stage_ == Stage::Ready; }
  const float* input_inverse_scale() const;
  static std::pair<std::string, int> fp8_copy_key(int value) { return {"e4m3 copy", value}; }
  // This kernel's output is read only by `reader` (the FFN's second product): once both are
  // calibrated it writes the output in e4m3 with the reader's scale (cuBLASLt's FP8 output),
  // not f16, and the reader skips its quantize.
  void write_e4m3_for(const Fp8ProductKernel* reader) { e4m3_reader_ = reader; }
  // The plan's record of where X's e4m3 comes from, for the executor's choice of products: a
  // LayerNorm's e4m3 copy, or the FP8 product before it (only while that one runs in FP8 and
  // writes e4m3 for this one); otherwise this kernel's own quantize pass.
  void input_from_norm() { input_from_norm_ = true; }
  void input_from_product(const Fp8ProductKernel* producer) { producer_ = producer; }
  // Whether running this product in FP8 now would take its own quantize pass over X.
  bool needs_quantize_pass() const;
  bool fp8() const { return stage_ == Stage::Ready; }
  // Per row of X: the multiply-adds FP8 speeds up (count * N * K) and the elements a quantize
  // pass converts (K).
  int64_t macs_per_row() const { return count_ * n_ * k_; }
  int64_t k() const { return k_; }
  // At executor open, after load(): runs the e4m3-output product once on scratch memory in the
  // forms cuBLASLt may take (C = the output or separate memory, exact or fast accumulation) and
  // keeps the first that runs; if none does, the output stays f16 and the reader quantizes it.
  // Returns what was chosen or why none ("" without an e4m3 reader), for the device report.
  std::string settle_e4m3_output(CublasLtGemm& gemm, cudaStream_t stream);

 private:
  enum class Stage { Planned, Loaded, Calibrating, Ready, Declined };
  const Tensor* weight_;
  bool weight_transposed_;
  int64_t count_, k_ = 0, n_ = 0;
  Epilogue epilogue_;
  std::string activation_;
  // Set by the executor between runs (load, calibration), never during one.
  Stage stage_ = Stage::Planned;
  void* weight_q_ = nullptr;       // e4m3 [count, N, K]
  float* weight_scale_ = nullptr;  // device, one float
  float weight_scale_host_ = 0.0f;
  std::unique_ptr<Fp8Calibrator> input_;  // amax of X and the scale from it
  const Fp8ProductKernel* e4m3_reader_ = nullptr;
  const Fp8ProductKernel* producer_ = nullptr;
  bool input_from_norm_ = false;
  bool e4m3_separate_c_ = false, e4m3_fast_accum_ = false;  // chosen by settle_e4m3_output
};

// Whether an FP8 product can take a weight of these dims: cuBLASLt's FP8 kernels need K and N
// multiples of 16. Returns "" if so, else why not (for the plan report).
std::string fp8_weight_refusal(int64_t k, int64_t n);

}  // namespace kpt::cuda
