#pragma once
// Row reductions for the GPU executor, and what the attention adapter reads from a mask.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

// y[r] = mean(x[r, :]) for a [rows, cols] float tensor (fp32 accumulation).
void row_mean(DType dtype, const void* x, void* y, int64_t rows, int64_t cols, cudaStream_t stream);

// Bits of the executor's device error word (set by kernels, read after each run).
enum DeviceErrorBit : int32_t {
  kMaskNotKeyPadding = 1,  // a mask value is neither "visible" nor "masked"
  kMaskNotTrailing = 2,    // visible keys are not a prefix of the keys
};

// Key-padding lengths from an attention mask broadcast over heads and queries: mask holds
// `batch` rows of `seq_kv` values (`batch_stride` elements apart, 0 for one row shared by all
// batches). Bool: true is visible. Float (f32/f16/bf16), additive: 0 is visible, <= -1000 masked
// (exp underflows to 0 in every float type; bf16 rounds -10000 to -9984).
// kv_lens[b] = number of visible keys; visible keys that are not a prefix, or other float
// values, set the bits above in *error_word, since flash attention takes lengths only.
void mask_to_lengths(DType dtype, const void* mask, int64_t batch, int64_t batch_stride,
                     int64_t seq_kv, int32_t* kv_lens, int32_t* error_word, cudaStream_t stream);

}  // namespace kpt::cuda
