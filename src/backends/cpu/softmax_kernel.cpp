// Float32 Softmax over contiguous rows: the last axis from opset 13, the flattened trailing
// axes [axis:] before it. Three passes over each row (maximum, exponentials and their sum,
// scaling); rows are parallel. A row holding a NaN becomes all NaN, as in the reference kernel.
// Softmax over an inner axis goes to the reference kernel.
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

void softmax_row_portable(const float* x, float* y, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) nan = true;
    mx = std::max(mx, x[i]);
  }
  if (nan) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

KPT_AVX512 void softmax_row_avx512(const float* x, float* y, int64_t n) {
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __mmask16 nan = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    nan |= _mm512_mask_cmp_ps_mask(k, v, v, _CMP_UNORD_Q);
    vmax = _mm512_mask_max_ps(vmax, k, vmax, v);
  }
  if (nan) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 e = vec::exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
    _mm512_mask_storeu_ps(y + i, k, e);
    sum = _mm512_mask_add_ps(sum, k, sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), inv));
  }
}

class SoftmaxKernel final : public ops::Kernel {
 public:
  std::string name() const override { return "cpu.softmax"; }

  void run(ops::KernelContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.input(0).dtype() != DType::F32) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& x = ctx.input(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    int64_t axis = ctx.attr_int("axis", ctx.opset() < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    // From opset 13 the op runs along one axis: only the last one has contiguous rows.
    if (rank == 0 || axis < 0 || axis >= rank || (ctx.opset() >= 13 && axis != rank - 1) ||
        x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    int64_t n = 1;
    for (int64_t d = axis; d < rank; ++d) n *= x.dim(d);
    const int64_t rows = x.numel() / n;
    Tensor y = ctx.allocate_output(0, DType::F32, x.dims());
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const bool avx = vec::has_avx512();
    parallel_for(rows, std::max<int64_t>(1, 8192 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (avx)
          softmax_row_avx512(px + r * n, py + r * n, n);
        else
          softmax_row_portable(px + r * n, py + r * n, n);
      }
    });
    ctx.set_output(0, std::move(y));
  }
};

std::unique_ptr<ops::Kernel> prepare_softmax(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32)) return nullptr;
  return std::make_unique<SoftmaxKernel>();
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Softmax", prepare_softmax);

}  // namespace kpt::cpu
