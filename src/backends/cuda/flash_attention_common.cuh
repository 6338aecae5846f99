#pragma once
// What the flash attention kernels share (flash_attention.cu: mma.sync for sm_80 and up;
// flash_attention_sm90.cu: wgmma and TMA for sm_90a): copies, conversions, exp2, strides.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/attention.hpp"

namespace kpt::cuda::flash {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// All-zero strides mean contiguous [batch, heads, seq, D].
inline HeadStrides resolved(HeadStrides s, int64_t heads, int64_t seq, int64_t d) {
  if (s.batch == 0 && s.head == 0 && s.seq == 0) return {heads * seq * d, seq * d, d};
  return s;
}

// The Hopper kernel (flash_attention_sm90.cu), compute capability 9.0 only; `a` is checked.
enum class Sm90Kernel {
  Rows128,          // 2 consumer warpgroups, 128 query rows per block
  Rows128Pingpong,  // the same, the consumers taking turns to issue their products
  Rows64,           // 1 consumer warpgroup, 64 query rows per block (small grids)
  // Persistent: only as many blocks as fit on the GPU at once, each taking several tiles; the
  // producer loads the next tile while the consumers finish one.
  Rows128Persistent,
  Rows64Persistent,
};
void flash_attention_sm90(const AttentionArgs& a, Sm90Kernel kind, cudaStream_t stream);

}  // namespace kpt::cuda::flash
