// Products whose constant weight B [K, N] has N not a multiple of 8 16-bit elements (GPT-2's LM
// head: 50257 tokens). cuBLASLt's tensor-core kernels need 16-byte aligned leading dimensions;
// with a 2-byte aligned one it runs kernels about 4x slower (measured on the H200: 125 TFLOP/s
// for the 512 x 50257 x 768 head). So the weight (and bias) are padded with zero columns to a
// multiple of 8, once, at the first run; the product goes to a [M, N8] temporary and one 2-D
// copy writes the [M, N] output.
#include <algorithm>
#include <memory>
#include <mutex>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "core/cast.hpp"

namespace kpt::cuda {

namespace {

constexpr int64_t kAlignElements = 8;  // 16 bytes of f16 / bf16

int64_t padded(int64_t n) {
  return (n + kAlignElements - 1) / kAlignElements * kAlignElements;
}

// `t` ([K, N] or [N]) with its last axis zero-padded to `n8` columns, as `dtype`.
Tensor pad_columns(const Tensor& t, int64_t n8, DType dtype) {
  const Tensor f = t.dtype() == DType::F32 ? t : cast_tensor(t, DType::F32);
  const int64_t n = f.dims().back();
  const int64_t rows = f.numel() / n;
  Dims dims = f.dims();
  dims.back() = n8;
  Tensor out(DType::F32, dims);
  float* o = out.data<float>();
  const float* in = f.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n8; ++c) o[r * n8 + c] = c < n ? in[r * n + c] : 0.0f;
  }
  return cast_tensor(out, dtype);
}

// Device memory of its own (cudaMalloc, freed with the kernel): the kernel outlives the
// executor's stream, so memory freed in that stream's order could not be returned safely.
DeviceBuffer upload_owned(const Tensor& t, cudaStream_t stream) {
  void* p = nullptr;
  KPT_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(t.nbytes(), 1)));
  std::shared_ptr<void> owner(p, [](void* q) { cudaFree(q); });
  KPT_CUDA_CHECK(cudaMemcpyAsync(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice, stream));
  KPT_CUDA_CHECK(cudaStreamSynchronize(stream));  // `t` is a temporary of the caller
  return DeviceBuffer::wrap(t.dtype(), t.dims(), p, owner);
}

struct PaddedWeights {
  std::once_flag once;
  DeviceBuffer b, bias;
};

}  // namespace

bool wants_padded_weight(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (dt != DType::F16 && dt != DType::BF16) return false;
  const Tensor* b = c.constants.size() > 1 ? c.constants[1] : nullptr;
  return b && b->dims().size() == 2 && b->dims().back() % kAlignElements != 0 &&
         b->dims()[0] % kAlignElements == 0;
}

std::unique_ptr<GpuKernel> make_padded_weight_product(const GpuPrepareContext& c,
                                                      Epilogue epilogue) {
  const DType dt = c.device_dtype(0);
  const bool has_bias = epilogue != Epilogue::None;
  auto state = std::make_shared<PaddedWeights>();
  // The weight and bias are read on the host (once, to pad and upload them), so the executor
  // does not upload the unpadded copies.
  std::vector<bool> host_in(c.node.inputs.size(), false);
  host_in[1] = true;
  if (has_bias) host_in[2] = true;
  return std::make_unique<LambdaGpuKernel>(
      "cublasLt.gemm(" + dtype_tag(dt) + ", weight padded to a multiple of 8)",
      [state, dt, epilogue, has_bias](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& a = *g.in[0];
        const Tensor& w = *g.host[1];
        const int64_t k = w.dims()[0], n = w.dims()[1], n8 = padded(n);
        if (a.dims().empty() || a.dims().back() != k)
          throw Error("MatMul on the GPU: " + a.describe() + " times a weight of shape " +
                      dims_to_string(w.dims()));
        std::call_once(state->once, [&] {
          // The first run of every signature is eager (CUDA graphs record first), so these
          // uploads are never captured.
          state->b = upload_owned(pad_columns(w, n8, dt), ctx.stream);
          if (has_bias) state->bias = upload_owned(pad_columns(*g.host[2], n8, dt), ctx.stream);
        });
        const int64_t m = a.numel() / k;
        DeviceBuffer wide = ctx.alloc.allocate(dt, {m, n8});
        ctx.gemm.run(gemm_precision(dt), {m, n8, k, false}, a.data(), state->b.data(), wide.data(),
                     ctx.stream, has_bias ? state->bias.data() : nullptr, epilogue);
        Dims out = a.dims();
        out.back() = n;
        g.out[0] = ctx.alloc.allocate(dt, out);
        // The driver's 2-D copy moves rows of any alignment at close to copy speed (the
        // element-wise strided copy ran at a fraction of it).
        const size_t esize = dtype_size(dt);
        KPT_CUDA_CHECK(cudaMemcpy2DAsync(g.out[0].data(), static_cast<size_t>(n) * esize,
                                         wide.data(), static_cast<size_t>(n8) * esize,
                                         static_cast<size_t>(n) * esize, static_cast<size_t>(m),
                                         cudaMemcpyDeviceToDevice, ctx.stream));
      },
      host_in);
}

}  // namespace kpt::cuda
