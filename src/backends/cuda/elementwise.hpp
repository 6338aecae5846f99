#pragma once
// Element-wise kernels with ONNX (numpy) broadcasting, for the GPU executor: binary arithmetic,
// Where, unary math and dtype casts. Floats (f32, f16, bf16) compute in fp32; integer inputs
// compute in int64.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"
#include "kpt/tensor.hpp"

namespace kpt::cuda {

constexpr int kMaxBroadcastRank = 6;

// The output's dims and, for each operand, its element stride along each output dim (0 where
// the operand is broadcast). Built on the host by broadcast_layout().
struct BroadcastLayout {
  int rank = 0;
  int64_t dims[kMaxBroadcastRank] = {};
  int64_t strides[3][kMaxBroadcastRank] = {};
  int64_t numel = 0;
  bool contiguous = true;  // every operand has the output's shape: plain linear indexing
};

// Throws kpt::Error when the shapes do not broadcast or the rank is over kMaxBroadcastRank.
BroadcastLayout broadcast_layout(const Dims* const* operands, int count, Dims& out_dims);

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min };
enum class UnaryOp { Erf, Tanh, Sqrt, Relu, Sigmoid, Exp, Log, Neg, Abs, Reciprocal };

// y = a op b; a, b and y of `dtype` (f32, f16, bf16, i32 or i64; Pow: floats only).
void binary(BinaryOp op, DType dtype, const void* a, const void* b, void* y,
            const BroadcastLayout& layout, cudaStream_t stream);
// y = cond ? a : b; cond is bool (one byte), a, b and y of any 1, 2, 4 or 8-byte dtype.
void where(DType dtype, const void* cond, const void* a, const void* b, void* y,
           const BroadcastLayout& layout, cudaStream_t stream);
// y = op(x) for n elements of a float dtype.
void unary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, cudaStream_t stream);
// y = x converted from `from` to `to` (f32, f16, bf16, f64, i64, i32, i8, u8, bool). Finite
// values beyond f16's range saturate to +-65504: a model's f32 "-inf substitute" (finfo.min)
// must stay a large negative number, not become -inf and then NaN in (1 - mask) * min.
void cast(DType from, DType to, const void* x, void* y, int64_t n, cudaStream_t stream);
bool cast_supported(DType dtype);

}  // namespace kpt::cuda
