#pragma once
// Embedding lookup on the GPU: out[i, :] = table[ids[i], :] for a [vocab, hidden] table (any
// element type; rows are copied as bytes) and int64 ids. The caller checks ids on the host
// where it has them; on the device a negative id counts from the end (ONNX Gather) and one outside
// [-vocab, vocab) yields a zero row rather than a read outside the table.
#include <cuda_runtime.h>

#include <cstdint>

#include "kpt/dtype.hpp"

namespace kpt::cuda {

void embedding_gather(DType dtype, const void* table, int64_t vocab, int64_t hidden,
                      const int64_t* ids, int64_t count, void* out, cudaStream_t stream);

}  // namespace kpt::cuda
