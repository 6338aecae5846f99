#include "backends/cuda/conv2d.hpp"

#include <algorithm>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/strided_copy.hpp"
#include "kpt/error.hpp"

namespace kpt::cuda {

namespace {

// y = act(W * b_mat + residual + bias) for `batch` images: one GEMM with the residual as its C
// and, without a bias, the ReLU as its epilogue; with a bias, one pass adds it (and the ReLU)
// after: cuBLASLt's bias runs along our columns (the plane), not the channels, and it plans no
// row-order GEMM with a bias epilogue (CUBLAS_STATUS_NOT_SUPPORTED on the H200, cuBLASLt 13.1).
void product(CublasLtGemm& gemm, const Conv2dArgs& a, int64_t batch, int64_t k, int64_t plane,
             const void* b_mat, void* y, const void* residual, cudaStream_t stream) {
  const bool relu_in_gemm = a.relu && !a.bias;
  gemm.run(gemm_precision(a.dtype), {a.out_channels, plane, k, false, batch}, a.weight, b_mat, y,
           stream, nullptr, relu_in_gemm ? Epilogue::Relu : Epilogue::None, 1.0f, residual);
  if (a.bias)
    bias_residual_act(a.dtype, y, plane, y, a.bias, nullptr, batch, a.out_channels, plane, a.relu,
                      stream);
}

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

}  // namespace

std::string to_string(ConvMethod m) {
  switch (m) {
    case ConvMethod::Auto:
      return "auto";
    case ConvMethod::Direct:
      return "direct";
    case ConvMethod::AlignedCopy:
      return "aligned copy";
  }
  return "?";
}

bool conv_reads_input_directly(const Window2d& w) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
         w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0 &&
         w.out_h == w.in_h && w.out_w == w.in_w;
}

void conv2d(CublasLtGemm& gemm, RunAllocator& alloc, const Conv2dArgs& a, cudaStream_t stream,
            ConvMethod method) {
  const Window2d& w = a.window;
  if (a.images <= 0 || a.out_channels <= 0 || w.channels <= 0 || w.out_h <= 0 || w.out_w <= 0)
    throw Error("conv2d on the GPU needs positive images, channels and output size");
  const int64_t plane = w.out_h * w.out_w;
  const int64_t k = w.channels * w.kernel_h * w.kernel_w;
  const auto esize = static_cast<int64_t>(dtype_size(a.dtype));
  if (method == ConvMethod::Auto && (plane * esize) % 16 != 0) method = ConvMethod::AlignedCopy;
  const bool aligned_copy = method == ConvMethod::AlignedCopy;
  const int64_t y_image = a.out_channels * plane;
  if (!aligned_copy && conv_reads_input_directly(w)) {
    product(gemm, a, a.images, k, plane, a.x, a.y, a.residual, stream);
    return;
  }
  // col rows (and, for the aligned copy, the GEMM's output rows) `ld` elements apart.
  const int64_t ld = aligned_copy ? round_up(plane, 16 / esize) : plane;
  // The weights' rows (K elements) must be 16-byte multiples too (the 7x7 stem's K = 147): the
  // product then runs over K rounded up, with zero weight columns and zero col rows there.
  const int64_t k_pad = round_up(k, 16 / esize);
  Conv2dArgs g = a;
  DeviceBuffer weight;
  if (k_pad != k) {
    weight = alloc.allocate(a.dtype, {a.out_channels, k_pad});
    KPT_CUDA_CHECK(cudaMemsetAsync(weight.data(), 0, weight.nbytes(), stream));
    StridedCopy copy;
    copy.rank = 2;
    copy.dims[0] = a.out_channels;
    copy.dims[1] = k;
    copy.src_strides[0] = k;
    copy.src_strides[1] = 1;
    copy.dst_strides[0] = k_pad;
    copy.dst_strides[1] = 1;
    copy.elem_size = static_cast<size_t>(esize);
    strided_copy(copy, a.weight, weight.data(), stream);
    g.weight = weight.data();
  }
  const int64_t col_image = k_pad * ld;
  const int64_t x_image = w.channels * w.in_h * w.in_w;
  const int64_t per_image = (col_image + (aligned_copy ? a.out_channels * ld : 0)) * esize;
  const int64_t chunk =
      std::min(a.images, std::max<int64_t>(1, static_cast<int64_t>(a.workspace_bytes) / per_image));
  DeviceBuffer col = alloc.allocate(a.dtype, {chunk, k_pad, ld});
  if (k_pad != k) {
    // Rows k..k_pad of every image's col are zero (garbage there could be NaN, and NaN times a
    // zero weight is NaN); im2col never writes them.
    const auto pitch = static_cast<size_t>(k_pad * ld * esize);
    KPT_CUDA_CHECK(cudaMemset2DAsync(static_cast<char*>(col.data()) + k * ld * esize, pitch, 0,
                                     static_cast<size_t>((k_pad - k) * ld * esize),
                                     static_cast<size_t>(chunk), stream));
  }
  DeviceBuffer padded;
  if (aligned_copy) padded = alloc.allocate(a.dtype, {chunk, a.out_channels, ld});
  for (int64_t first = 0; first < a.images; first += chunk) {
    const int64_t count = std::min(chunk, a.images - first);
    im2col(a.dtype, static_cast<const char*>(a.x) + first * x_image * esize, col.data(), count, w,
           ld, k_pad, stream);
    const void* residual =
        a.residual ? static_cast<const char*>(a.residual) + first * y_image * esize : nullptr;
    void* y = static_cast<char*>(a.y) + first * y_image * esize;
    if (aligned_copy) {
      gemm.run(gemm_precision(a.dtype), {a.out_channels, ld, k_pad, false, count}, g.weight,
               col.data(), padded.data(), stream);
      bias_residual_act(a.dtype, padded.data(), ld, y, a.bias, residual, count, a.out_channels,
                        plane, a.relu, stream);
    } else {
      product(gemm, g, count, k_pad, plane, col.data(), y, residual, stream);
    }
  }
}

}  // namespace kpt::cuda
