#include "backends/cpu/dnnl_quantize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/parallel.hpp"

namespace kpt::cpu {

namespace {

// The project builds for baseline x86-64; these loops dominate the int8 path's own overhead,
// so they are cloned for AVX-512 and picked at load by the CPU.
struct Range {
  float lo, hi;
};

__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) Range min_max(const float* x,
                                                                                  int64_t n) {
  float lo = 0.f, hi = 0.f;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (int64_t i = 0; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  return {lo, hi};
}

__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void quantize_chunk(
    const float* x, int64_t n, float inv_scale, float zero_point, uint8_t* q) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] * inv_scale) + zero_point;
    v = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
    q[i] = static_cast<uint8_t>(v);
  }
}

__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void bf16_chunk(const float* x,
                                                                                    int64_t n,
                                                                                    uint16_t* y) {
  const auto* bits = reinterpret_cast<const uint32_t*>(x);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = bits[i];
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    y[i] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : rounded);
  }
}

constexpr int64_t kChunk = 16384;

}  // namespace

ActivationQuant quantize_u8(const float* x, int64_t n, uint8_t* q) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<Range> ranges(static_cast<size_t>(std::max<int64_t>(chunks, 1)), Range{0.f, 0.f});
  parallel_for(chunks, 4, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t start = c * kChunk;
      ranges[static_cast<size_t>(c)] = min_max(x + start, std::min(kChunk, n - start));
    }
  });
  float lo = 0.f, hi = 0.f;
  for (const Range& r : ranges) {
    lo = std::min(lo, r.lo);
    hi = std::max(hi, r.hi);
  }
  ActivationQuant p;
  p.scale = (hi - lo) / 255.f;
  if (!(p.scale > 0.f) || !std::isfinite(p.scale)) p.scale = 1.f;
  p.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / p.scale), 0.f, 255.f));
  const float inv = 1.f / p.scale;
  const float zp = static_cast<float>(p.zero_point);
  parallel_for(chunks, 4, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t start = c * kChunk;
      quantize_chunk(x + start, std::min(kChunk, n - start), inv, zp, q + start);
    }
  });
  return p;
}

void convert_to_bf16(const float* x, int64_t n, uint16_t* y) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // About 256K elements per thread before splitting pays for waking the other threads.
  parallel_for(chunks, 16, [&](int64_t begin, int64_t end) {
    const int64_t start = begin * kChunk;
    bf16_chunk(x + start, std::min(end * kChunk, n) - start, y + start);
  });
}

void quantize_weights_s8(const float* w, int64_t k, int64_t n, bool transposed, int8_t* q,
                         float* scales, int32_t* column_sums) {
  auto at = [&](int64_t r, int64_t c) { return transposed ? w[c * k + r] : w[r * n + c]; };
  for (int64_t j = 0; j < n; ++j) {
    float amax = 0.f;
    for (int64_t r = 0; r < k; ++r) amax = std::max(amax, std::fabs(at(r, j)));
    scales[j] = amax > 0.f ? amax / 127.f : 1.f;
  }
  for (int64_t j = 0; j < n; ++j) column_sums[j] = 0;
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      const float v = std::clamp(std::nearbyint(at(r, j) / scales[j]), -127.f, 127.f);
      q[r * n + j] = static_cast<int8_t>(v);
      column_sums[j] += static_cast<int32_t>(v);
    }
  }
}

}  // namespace kpt::cpu
