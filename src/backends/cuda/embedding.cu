#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/embedding.hpp"

namespace kpt::cuda {

namespace {

// One block per looked-up row; 16-byte words when the row's bytes allow, else single bytes.
template <typename W>
__global__ void gather_rows(const W* __restrict__ table, int64_t vocab, int64_t row_words,
                            const int64_t* __restrict__ ids, W* __restrict__ out) {
  const int64_t i = blockIdx.x;
  // Negative ids count from the end, as in ONNX Gather.
  const int64_t id = ids[i] < 0 ? ids[i] + vocab : ids[i];
  W* dst = out + i * row_words;
  if (id < 0 || id >= vocab) {
    for (int64_t w = threadIdx.x; w < row_words; w += blockDim.x) dst[w] = W{};
    return;
  }
  const W* src = table + id * row_words;
  for (int64_t w = threadIdx.x; w < row_words; w += blockDim.x) dst[w] = src[w];
}

}  // namespace

void embedding_gather(DType dtype, const void* table, int64_t vocab, int64_t hidden,
                      const int64_t* ids, int64_t count, void* out, cudaStream_t stream) {
  if (count <= 0 || hidden <= 0) return;
  const int64_t row_bytes = hidden * static_cast<int64_t>(dtype_size(dtype));
  const bool wide = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(table) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (wide) {
    gather_rows<uint4><<<static_cast<unsigned>(count), 128, 0, stream>>>(
        static_cast<const uint4*>(table), vocab, row_bytes / 16, ids, static_cast<uint4*>(out));
  } else {
    gather_rows<uint8_t><<<static_cast<unsigned>(count), 128, 0, stream>>>(
        static_cast<const uint8_t*>(table), vocab, row_bytes, ids, static_cast<uint8_t*>(out));
  }
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
