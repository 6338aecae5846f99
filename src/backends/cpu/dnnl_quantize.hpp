#pragma once
// Source conversions for the reduced-precision GEMM paths. int8: weights symmetric s8 per
// output column once at load, activations asymmetric u8 per tensor at every run (u8 x s8 is
// what VNNI's vpdpbusd multiplies natively, so oneDNN needs no s8-source compensation).
// bf16: activations rounded to bf16 at every run.
#include <cstdint>

namespace kpt::cpu {

struct ActivationQuant {
  float scale = 1.f;       // x ~= scale * (q - zero_point)
  int32_t zero_point = 0;  // in [0, 255]
};

// Quantizes n floats to u8 with one scale and zero point chosen from their min and max (the
// range always includes 0, so that zero padding stays exact). Parallel over the caller's
// OpenMP threads.
ActivationQuant quantize_u8(const float* x, int64_t n, uint8_t* q);

// Rounds n floats to bf16 (nearest even; NaN stays NaN). Small inputs stay on the calling
// thread: for them a parallel region costs more than the conversion.
void convert_to_bf16(const float* x, int64_t n, uint16_t* y);

// Quantizes W (k x n, or n x k when `transposed`) into row-major k x n s8 with one symmetric
// scale per column, and the column sums of the quantized values (for the zero-point
// correction): W[:, j] ~= scales[j] * q[:, j].
void quantize_weights_s8(const float* w, int64_t k, int64_t n, bool transposed, int8_t* q,
                         float* scales, int32_t* column_sums);

}  // namespace kpt::cpu
