#pragma once
// 2D convolution (NCHW, groups 1) on cuBLASLt: per image, Y[Cout, OH*OW] = W[Cout, Cin*KH*KW] *
// col[Cin*KH*KW, OH*OW], as one strided-batched GEMM over the images with the weights shared
// (batch stride 0). A 1x1 stride-1 unpadded convolution multiplies the input itself (no copy);
// any other window first unrolls the images into col (im2col) in chunks bounded by
// Conv2dArgs::workspace_bytes. The residual is cuBLASLt's C (beta = 1); the per-channel bias and
// the ReLU follow in one pass over the output (the ReLU alone is the GEMM's epilogue).
// Planes whose rows are not 16-byte multiples (ResNet's 14x14 and 7x7 in f16) would give
// cuBLASLt unaligned leading dimensions and its slow kernels: those go through col with rows
// padded to 16 bytes (also for 1x1 windows), a GEMM into a padded temporary, and one pass that
// drops the padding while adding bias and residual and applying ReLU. Weights whose rows are not
// 16-byte multiples (the 7x7 stem's K = 147) are padded with zero columns.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backends/cuda/conv.hpp"
#include "backends/cuda/gemm.hpp"
#include "backends/cuda/gpu_kernel.hpp"

namespace kpt::cuda {

constexpr size_t kConvWorkspaceBytes = size_t{256} << 20;

struct Conv2dArgs {
  DType dtype = DType::F16;  // x, weight, bias, residual and y (f32, f16 or bf16)
  int64_t images = 0;
  int64_t out_channels = 0;
  Window2d window;                               // window.channels: input channels
  const void* x = nullptr;                       // [images, channels, in_h, in_w]
  const void* weight = nullptr;                  // [out_channels, channels, kernel_h, kernel_w]
  const void* bias = nullptr;                    // [out_channels] or nullptr
  const void* residual = nullptr;                // y's shape, or nullptr
  void* y = nullptr;                             // [images, out_channels, out_h, out_w]
  bool relu = false;                             // y = relu(conv + bias + residual)
  size_t workspace_bytes = kConvWorkspaceBytes;  // bound on the col chunk (at least one image)
};

// How conv2d computes. Auto: AlignedCopy where a plane row is not a 16-byte multiple, else
// Direct (the input or an unpadded col as the GEMM's B). The others force one way (tests,
// kpt_gpu_conv_bench).
enum class ConvMethod { Auto, Direct, AlignedCopy };
std::string to_string(ConvMethod m);

// The input is the GEMM's B as it is: 1x1 kernel, stride 1, no padding.
bool conv_reads_input_directly(const Window2d& w);

// Temporaries (the col chunk) come from `alloc`.
void conv2d(CublasLtGemm& gemm, RunAllocator& alloc, const Conv2dArgs& a, cudaStream_t stream,
            ConvMethod method = ConvMethod::Auto);

}  // namespace kpt::cuda
