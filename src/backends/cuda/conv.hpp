#pragma once
// Convolution and pooling kernels for the GPU executor, NCHW, f32/f16/bf16 (arithmetic in
// fp32). A convolution is a GEMM per image on cuBLASLt (conv_gemm.cpp); these are the parts
// around it: im2col for kernels other than 1x1 stride 1, the per-channel bias and ReLU when
// cuBLASLt's epilogue cannot take them, and max / average pooling.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

// A 2D window over an NCHW tensor: kernel, stride, dilation, pads; input and output spatial
// sizes (ONNX's geometry, ops/vision/vision_util.hpp's make_window computes it).
struct Window2d {
  int64_t channels = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// col[b, (c, ky, kx), (oy, ox)] = x[b, c, oy * sh - pt + ky * dh, ox * sw - pl + kx * dw] (0
// outside) for `images` images of x [images, channels, in_h, in_w]: each image's col is the
// [channels * kh * kw, out_h * out_w] matrix that the weights [Cout, channels * kh * kw]
// multiply into the image's output [Cout, out_h * out_w]. Rows of col are `col_ld` >= out_h *
// out_w elements apart (a row stride cuBLASLt's aligned kernels take), images `col_rows` >=
// channels * kh * kw rows apart (K padded); the gaps are not written.
void im2col(DType dtype, const void* x, void* col, int64_t images, const Window2d& w,
            int64_t col_ld, int64_t col_rows, cudaStream_t stream);

// y[b, c, p] = act(src[b, c, p] + bias[c] + residual[b, c, p]) over [images, channels, plane],
// where src rows are `src_ld` >= plane elements apart (src == y with src_ld == plane: in place);
// bias and residual may be nullptr; act is ReLU when `relu`, else identity.
void bias_residual_act(DType dtype, const void* src, int64_t src_ld, void* y, const void* bias,
                       const void* residual, int64_t images, int64_t channels, int64_t plane,
                       bool relu, cudaStream_t stream);

// Max pooling (padding never wins) or average pooling of x [images, channels, in_h, in_w] into
// y [images, channels, out_h, out_w]; the average divides by the taps inside the padded input
// when `count_include_pad` (a ceil_mode window hanging past the pads counts less), else by the
// taps inside the input.
void max_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                cudaStream_t stream);
void avg_pool2d(DType dtype, const void* x, void* y, int64_t images, const Window2d& w,
                bool count_include_pad, cudaStream_t stream);

}  // namespace kpt::cuda
