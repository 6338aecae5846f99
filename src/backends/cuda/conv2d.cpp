#include "backends/cuda/conv2d.hpp"

#include <algorithm>

#include "kpt/error.hpp"

namespace kpt::cuda {

namespace {

// y = act(W * b_mat + residual + bias) for `batch` images, one GEMM (plus a bias pass when
// cuBLASLt has no row-order plan for the per-channel bias).
void product(CublasLtGemm& gemm, const Conv2dArgs& a, int64_t batch, int64_t k, int64_t plane,
             const void* b_mat, void* y, const void* residual, cudaStream_t stream,
             ConvEpilogue mode) {
  const GemmPrecision p = gemm_precision(a.dtype);
  GemmShape shape{a.out_channels, plane, k, false, batch};
  if (a.bias && mode != ConvEpilogue::SeparatePass) {
    GemmShape row = shape;
    row.bias_per_row = true;
    const Epilogue e = a.relu ? Epilogue::BiasRelu : Epilogue::Bias;
    if (gemm.can_run(p, row, e)) {
      gemm.run(p, row, a.weight, b_mat, y, stream, a.bias, e, 1.0f, residual);
      return;
    }
    if (mode == ConvEpilogue::Fused)
      throw Error("cuBLASLt has no row-order plan for a per-channel bias (M " +
                  std::to_string(shape.m) + ", N " + std::to_string(shape.n) + ", K " +
                  std::to_string(shape.k) + ", batch " + std::to_string(batch) + ")");
  }
  // Column order: without a bias the ReLU still fits the epilogue (it is per element).
  const bool relu_in_gemm = a.relu && !a.bias;
  gemm.run(p, shape, a.weight, b_mat, y, stream, nullptr,
           relu_in_gemm ? Epilogue::Relu : Epilogue::None, 1.0f, residual);
  if (a.bias || (a.relu && !relu_in_gemm))
    channel_bias_act(a.dtype, y, a.bias, batch, a.out_channels, plane, a.relu, stream);
}

}  // namespace

bool conv_reads_input_directly(const Window2d& w) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
         w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0 &&
         w.out_h == w.in_h && w.out_w == w.in_w;
}

void conv2d(CublasLtGemm& gemm, RunAllocator& alloc, const Conv2dArgs& a, cudaStream_t stream,
            ConvEpilogue mode) {
  const Window2d& w = a.window;
  if (a.images <= 0 || a.out_channels <= 0 || w.channels <= 0 || w.out_h <= 0 || w.out_w <= 0)
    throw Error("conv2d on the GPU needs positive images, channels and output size");
  const int64_t plane = w.out_h * w.out_w;
  const int64_t k = w.channels * w.kernel_h * w.kernel_w;
  const size_t esize = dtype_size(a.dtype);
  const int64_t y_image = a.out_channels * plane;
  if (conv_reads_input_directly(w)) {
    product(gemm, a, a.images, k, plane, a.x, a.y, a.residual, stream, mode);
    return;
  }
  const int64_t col_image = k * plane;
  const int64_t x_image = w.channels * w.in_h * w.in_w;
  const auto per_chunk = static_cast<int64_t>(
      std::max<size_t>(1, a.workspace_bytes / (static_cast<size_t>(col_image) * esize)));
  const int64_t chunk = std::min(a.images, per_chunk);
  DeviceBuffer col = alloc.allocate(a.dtype, {chunk, k, plane});
  for (int64_t first = 0; first < a.images; first += chunk) {
    const int64_t count = std::min(chunk, a.images - first);
    im2col(a.dtype, static_cast<const char*>(a.x) + first * x_image * esize, col.data(), count, w,
           stream);
    const void* residual =
        a.residual ? static_cast<const char*>(a.residual) + first * y_image * esize : nullptr;
    product(gemm, a, count, k, plane, col.data(), static_cast<char*>(a.y) + first * y_image * esize,
            residual, stream, mode);
  }
}

}  // namespace kpt::cuda
