#pragma once
// One strided copy kernel behind the executor's layout ops: Transpose (permuted input strides),
// Slice (start offset and step strides) and Concat (each input into a window of the output).
#include <cuda_runtime.h>

#include <cstdint>

namespace kpt::cuda {

constexpr int kMaxCopyRank = 6;

// Copies the elements of a `dims`-shaped index space: dst[dst_offset + sum(i_d * dst_strides[d])]
// = src[src_offset + sum(i_d * src_strides[d])] (strides and offsets in elements; src strides
// may be negative). 16-byte words are moved when the innermost dim is contiguous on both sides
// and its bytes and the addresses allow.
struct StridedCopy {
  int rank = 0;
  int64_t dims[kMaxCopyRank] = {};
  int64_t src_strides[kMaxCopyRank] = {};
  int64_t dst_strides[kMaxCopyRank] = {};
  int64_t src_offset = 0, dst_offset = 0;
  size_t elem_size = 0;
};

void strided_copy(const StridedCopy& copy, const void* src, void* dst, cudaStream_t stream);

}  // namespace kpt::cuda
