#include <algorithm>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/strided_copy.hpp"
#include "kpt/error.hpp"

namespace kpt::cuda {

namespace {

// One thread per element (word) of the index space, innermost dim fastest so that warps read
// and write consecutive addresses wherever the layout has them.
template <typename W>
__global__ void strided_copy_kernel(StridedCopy c, const W* __restrict__ src, W* __restrict__ dst,
                                    int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, s = c.src_offset, d = c.dst_offset;
    for (int k = c.rank - 1; k >= 0; --k) {
      const int64_t x = rest % c.dims[k];
      rest /= c.dims[k];
      s += x * c.src_strides[k];
      d += x * c.dst_strides[k];
    }
    dst[d] = src[s];
  }
}

template <typename W>
void launch(const StridedCopy& c, const void* src, void* dst, cudaStream_t stream) {
  int64_t total = 1;
  for (int k = 0; k < c.rank; ++k) total *= c.dims[k];
  if (total == 0) return;
  const int threads = 256;
  const auto grid =
      static_cast<unsigned>(std::min<int64_t>((total + threads - 1) / threads, 65535 * 8));
  strided_copy_kernel<W>
      <<<grid, threads, 0, stream>>>(c, static_cast<const W*>(src), static_cast<W*>(dst), total);
  KPT_CUDA_CHECK_LAUNCH();
}

// Re-expresses the copy in units of `word` bytes along a contiguous innermost dim.
StridedCopy in_words(StridedCopy c, size_t word) {
  const int64_t per = static_cast<int64_t>(word / c.elem_size);
  c.dims[c.rank - 1] /= per;
  for (int k = 0; k < c.rank - 1; ++k) {
    c.src_strides[k] /= per;
    c.dst_strides[k] /= per;
  }
  c.src_offset /= per;
  c.dst_offset /= per;
  c.elem_size = word;
  return c;
}

bool fits_words(const StridedCopy& c, size_t word, const void* src, const void* dst) {
  if (c.rank == 0 || c.src_strides[c.rank - 1] != 1 || c.dst_strides[c.rank - 1] != 1) return false;
  if (word % c.elem_size != 0) return false;
  const auto per = static_cast<int64_t>(word / c.elem_size);
  if (c.dims[c.rank - 1] % per || c.src_offset % per || c.dst_offset % per) return false;
  for (int k = 0; k < c.rank - 1; ++k) {
    if (c.src_strides[k] % per || c.dst_strides[k] % per) return false;
  }
  return reinterpret_cast<uintptr_t>(src) % word == 0 &&
         reinterpret_cast<uintptr_t>(dst) % word == 0;
}

}  // namespace

void strided_copy(const StridedCopy& c, const void* src, void* dst, cudaStream_t stream) {
  if (c.rank < 1 || c.rank > kMaxCopyRank)
    throw Error("strided copy on the GPU: rank " + std::to_string(c.rank) + " is not in 1.." +
                std::to_string(kMaxCopyRank));
  for (size_t word : {size_t{16}, size_t{8}, size_t{4}}) {
    if (word > c.elem_size && fits_words(c, word, src, dst)) {
      const StridedCopy w = in_words(c, word);
      if (word == 16) return launch<uint4>(w, src, dst, stream);
      if (word == 8) return launch<uint64_t>(w, src, dst, stream);
      return launch<uint32_t>(w, src, dst, stream);
    }
  }
  switch (c.elem_size) {
    case 1:
      return launch<uint8_t>(c, src, dst, stream);
    case 2:
      return launch<uint16_t>(c, src, dst, stream);
    case 4:
      return launch<uint32_t>(c, src, dst, stream);
    case 8:
      return launch<uint64_t>(c, src, dst, stream);
    default:
      throw Error("strided copy on the GPU: no kernel for " + std::to_string(c.elem_size) +
                  "-byte elements");
  }
}

}  // namespace kpt::cuda
