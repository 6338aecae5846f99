// Float32 SwiGLU: y = a * sigmoid(alpha * a) * b for same-shape a and b (the fused Llama MLP
// gate), vectorized with vec_math's sigmoid and parallel over cache-line chunks. Broadcasting
// and other dtypes run the reference kernel.
#include <cmath>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

KPT_AVX512 void swiglu_avx512(const float* a, const float* b, float* y, int64_t n, float alpha) {
  const __m512 va = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(a + i);
    const __m512 s = vec::sigmoid512(_mm512_mul_ps(va, x));
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_loadu_ps(b + i)));
  }
  if (i < n) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(k, a + i);
    const __m512 s = vec::sigmoid512(_mm512_mul_ps(va, x));
    _mm512_mask_storeu_ps(y + i, k,
                          _mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_maskz_loadu_ps(k, b + i)));
  }
}

void swiglu_portable(const float* a, const float* b, float* y, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[i];
    y[i] = x / (1.0f + std::exp(-alpha * x)) * b[i];
  }
}

class SwiGluKernel final : public ops::Kernel {
 public:
  explicit SwiGluKernel(float alpha) : alpha_(alpha) {}
  std::string name() const override { return "cpu.swiglu"; }

  void run(ops::KernelContext& ctx) const override {
    if (!ctx.value(0).is_tensor() || !ctx.value(1).is_tensor() ||
        ctx.input(0).dtype() != DType::F32 || ctx.input(1).dtype() != DType::F32 ||
        ctx.input(0).dims() != ctx.input(1).dims()) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor y = ctx.allocate_output(0, DType::F32, a.dims());
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    const bool avx512 = vec::has_avx512();
    const float alpha = alpha_;
    parallel_for((a.numel() + 15) / 16, 1024, [&](int64_t begin, int64_t end) {
      const int64_t lo = begin * 16, hi = std::min(end * 16, a.numel());
      if (avx512) {
        swiglu_avx512(pa + lo, pb + lo, py + lo, hi - lo, alpha);
      } else {
        swiglu_portable(pa + lo, pb + lo, py + lo, hi - lo, alpha);
      }
    });
    ctx.set_output(0, std::move(y));
  }

 private:
  float alpha_;
};

std::unique_ptr<ops::Kernel> prepare_swiglu(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32) || !input_may_be(ctx, 1, DType::F32)) return nullptr;
  return std::make_unique<SwiGluKernel>(ctx.node.attr_float("alpha", 1.0f));
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "SwiGLU", prepare_swiglu);

}  // namespace kpt::cpu
