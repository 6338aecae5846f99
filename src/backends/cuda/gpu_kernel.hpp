#pragma once
// The GPU executor's per-node kernels: adapters from one ONNX node to the CUDA kernels of this
// folder. A factory sees the node with its inferred types at session load and returns a kernel
// or nothing (the node then runs on the CPU, with explicit copies). Kernels are const after
// preparation; their outputs come from the run's allocator, so that a CUDA graph's replay finds
// every buffer where its capture saw it.
#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/gemm.hpp"
#include "ir/graph.hpp"
#include "kpt/error.hpp"

namespace kpt::cuda {

// Device memory for one run's values and temporaries.
class RunAllocator {
 public:
  virtual ~RunAllocator() = default;
  virtual DeviceBuffer allocate(DType dtype, Dims dims) = 0;
};

struct GpuRunContext {
  cudaStream_t stream = nullptr;
  CublasLtGemm& gemm;
  RunAllocator& alloc;
  int32_t* error_word = nullptr;  // device word for DeviceErrorBit flags (reduce.hpp)
  // Buffers derived from one of the run's values, kept until the run ends so that nodes deriving
  // the same thing share one computation (every layer's attention turns the same mask into key
  // lengths). Keyed by what was derived and the source's plan value id (GpuArgs::in_values);
  // nullptr: nothing is shared.
  std::map<std::pair<std::string, int>, DeviceBuffer>* derived = nullptr;
};

class Fp8ProductKernel;

struct GpuPrepareContext {
  const ir::Node& node;
  std::vector<const ir::Type*> input_types;   // inferred; nullptr when unknown or omitted
  std::vector<const ir::Type*> output_types;  // inferred; nullptr when unknown
  std::vector<const Tensor*> constants;       // initializers, else nullptr
  // Inputs computed on the host from constants and shapes alone (known once per input shape):
  // the only values a kernel may read on the host.
  std::vector<bool> host_known;
  DType float_dtype = DType::F16;  // what f32 values are stored and computed as on the device
  // Precision::FP8: products by constant weights run as FP8 GEMMs (fp8_product.hpp).
  bool fp8_gemms = false;
  // Inputs (and output 0) the planner hands over as [batch, seq, heads, head_dim] although the
  // node's type says [batch, heads, seq, head_dim]: it skipped the head transposes around an
  // Attention node (cuda_plan.cpp). Empty / false: as typed.
  std::vector<bool> seq_major_inputs;
  bool seq_major_output = false;
  // FP8 plan fusion (cuda_plan.cpp): the FP8 product that reads output 0 (plan value id
  // `output_value`); a kernel that can write that output in e4m3 too does so for it.
  const Fp8ProductKernel* fp8_reader = nullptr;
  int output_value = -1;
  bool seq_major_input(size_t i) const {
    return i < seq_major_inputs.size() && seq_major_inputs[i];
  }

  bool has_input(size_t i) const { return i < node.inputs.size() && !node.inputs[i].empty(); }
  // The element type an input has on the device (f32 becomes float_dtype); Undefined if unknown.
  DType device_dtype(size_t input) const;
  DType device_dtype_of(DType logical) const {
    return logical == DType::F32 ? float_dtype : logical;
  }
  int64_t input_rank(size_t i) const;  // -1 when unknown
};

// One node's device inputs (nullptr where omitted or read on the host), its host inputs
// (nullptr unless host_inputs marks them) and its outputs, which run() fills.
struct GpuArgs {
  std::vector<const DeviceBuffer*> in;
  std::vector<const Tensor*> host;
  std::vector<DeviceBuffer> out;
  std::vector<int> in_values;  // the inputs' plan value ids (-1 where omitted); may be empty
};

class GpuKernel {
 public:
  virtual ~GpuKernel() = default;
  virtual void run(GpuRunContext& ctx, GpuArgs& args) const = 0;
  virtual std::string name() const = 0;  // "cublasLt.gemm(f16)", "cuda.view"
  // Inputs this kernel reads on the host (shapes, axes, slice bounds); the planner runs the
  // node on the CPU instead when one of them is not host-known.
  std::vector<bool> host_inputs;
};

using GpuKernelFactory = std::function<std::unique_ptr<GpuKernel>(const GpuPrepareContext&)>;

class GpuKernelRegistry {
 public:
  static GpuKernelRegistry& instance();
  void add(const std::string& domain, const std::string& op, GpuKernelFactory f);
  std::unique_ptr<GpuKernel> prepare(const GpuPrepareContext& ctx) const;
  bool has(const std::string& domain, const std::string& op) const;

 private:
  std::vector<std::tuple<std::string, std::string, GpuKernelFactory>> entries_;
};

struct GpuKernelRegistration {
  GpuKernelRegistration(const char* domain, const char* op, GpuKernelFactory f) {
    GpuKernelRegistry::instance().add(domain, op, std::move(f));
  }
};

#define KPT_GPU_CONCAT_INNER(a, b) a##b
#define KPT_GPU_CONCAT(a, b) KPT_GPU_CONCAT_INNER(a, b)
#define KPT_REGISTER_GPU_KERNEL(domain, op, factory)                                         \
  static const ::kpt::cuda::GpuKernelRegistration KPT_GPU_CONCAT(kpt_gpu_kernel_, __LINE__)( \
      domain, op, factory)

// A kernel defined by a lambda: most adapters need no state beyond what they captured.
class LambdaGpuKernel : public GpuKernel {
 public:
  using Fn = std::function<void(GpuRunContext&, GpuArgs&)>;
  LambdaGpuKernel(std::string name, Fn fn, std::vector<bool> host_in = {})
      : name_(std::move(name)), fn_(std::move(fn)) {
    host_inputs = std::move(host_in);
  }
  void run(GpuRunContext& ctx, GpuArgs& args) const override { fn_(ctx, args); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  Fn fn_;
};

// `count` projections of one input X [..., K] by weights W [count, K, N] (+ bias [count, N]) as
// one batched GEMM; output i is X * W[i] (+ bias[i]), [..., N]. Inputs X, W(, bias). The planner
// makes it for sibling kpt.MatMulBiasAct nodes (attention's Q, K and V projections).
std::unique_ptr<GpuKernel> make_sibling_projections(DType float_dtype, int64_t count, bool has_bias,
                                                    bool fp8 = false,
                                                    const Tensor* stacked_weights = nullptr);

// A product by a constant weight [K, N] whose N is not a multiple of 8 f16/bf16 elements (an LM
// head over 50257 tokens): the weight is padded so cuBLASLt's aligned kernels run
// (gpu_kernels_padded_gemm.cpp). `epilogue` other than None reads the bias, input 2.
bool wants_padded_weight(const GpuPrepareContext& c);
std::unique_ptr<GpuKernel> make_padded_weight_product(const GpuPrepareContext& c,
                                                      Epilogue epilogue);

// Helpers the adapters share.
// The float types the CUDA kernels compute in (f32, f16, bf16).
inline bool is_kernel_float(DType d) {
  return d == DType::F32 || d == DType::F16 || d == DType::BF16;
}
GemmPrecision gemm_precision(DType float_dtype);
std::string dtype_tag(DType float_dtype);  // "f16"
int64_t normalize_axis(int64_t axis, int64_t rank, const ir::Node& node);

}  // namespace kpt::cuda
