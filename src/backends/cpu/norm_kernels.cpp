// Float32 LayerNormalization, RMSNormalization and the com.microsoft SkipLayerNormalization /
// SkipSimplifiedLayerNormalization over the trailing axes: parallel over rows, each row read
// from L1 after its first pass (sum, then squared deviations, then the output), AVX-512 where
// the CPU has it. The output may alias the input: every pass reads element i before writing i.
// Parameter layouts other than one vector over the normalized axes go to the reference kernel.
#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

struct RowParams {
  int64_t n = 0;                 // elements per row
  const float* gamma = nullptr;  // [n]
  const float* beta = nullptr;   // [n] or nullptr
  const float* bias = nullptr;   // [n] added to the input (skip norms) or nullptr
  float eps = 0;
  bool rms = false;  // RMS (simplified) norm: no mean subtracted, no beta
};

// One row: s = x (+ skip) (+ bias), written to `sum` when given; y = normalized s. Returns the
// mean and 1/std through the pointers when they are not null.
struct RowOut {
  float* y;
  float* sum;
  float* mean;
  float* inv_std;
};

void norm_row_portable(const float* x, const float* skip, const RowParams& p, const RowOut& o) {
  const int64_t n = p.n;
  const float* s = x;
  if (skip || p.bias) {
    float* dst = o.sum ? o.sum : o.y;
    for (int64_t i = 0; i < n; ++i)
      dst[i] = x[i] + (skip ? skip[i] : 0.0f) + (p.bias ? p.bias[i] : 0.0f);
    s = dst;
  }
  double m = 0;
  if (!p.rms) {
    for (int64_t i = 0; i < n; ++i) m += s[i];
    m /= static_cast<double>(n);
  }
  const float mf = static_cast<float>(m);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = s[i] - mf;
    var += static_cast<double>(d) * d;
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(n) + p.eps));
  for (int64_t i = 0; i < n; ++i)
    o.y[i] = (s[i] - mf) * inv * p.gamma[i] + (p.beta ? p.beta[i] : 0.0f);
  if (o.mean) *o.mean = mf;
  if (o.inv_std) *o.inv_std = inv;
}

KPT_AVX512 void norm_row_avx512(const float* x, const float* skip, const RowParams& p,
                                const RowOut& o) {
  const int64_t n = p.n;
  const float* s = x;
  __m512 acc = _mm512_setzero_ps();
  if (skip || p.bias) {
    float* dst = o.sum ? o.sum : o.y;
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = vec::tail_mask(n - i);
      __m512 v = _mm512_maskz_loadu_ps(k, x + i);
      if (skip) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, skip + i));
      if (p.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, p.bias + i));
      _mm512_mask_storeu_ps(dst + i, k, v);
      acc = _mm512_add_ps(acc, v);
    }
    s = dst;
  } else if (!p.rms) {
    for (int64_t i = 0; i < n; i += 16)
      acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(vec::tail_mask(n - i), x + i));
  }
  const float mf = p.rms ? 0.0f : _mm512_reduce_add_ps(acc) / static_cast<float>(n);
  const __m512 vm = _mm512_set1_ps(mf);
  __m512 sq = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, s + i), vm);
    sq = _mm512_fmadd_ps(d, d, sq);
  }
  const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(var + p.eps);
  const __m512 vinv = _mm512_set1_ps(inv);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), vm), vinv);
    __m512 y = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, p.gamma + i));
    if (p.beta) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(k, p.beta + i));
    _mm512_mask_storeu_ps(o.y + i, k, y);
  }
  if (o.mean) *o.mean = mf;
  if (o.inv_std) *o.inv_std = inv;
}

// Everything one node run needs: rows of x (and skip rows, repeating every skip_rows rows).
struct NormJob {
  const float* x = nullptr;
  const float* skip = nullptr;
  int64_t skip_rows = 0;
  int64_t rows = 0;
  RowParams p;
  float* y = nullptr;
  float* sum = nullptr;
  float* mean = nullptr;
  float* inv_std = nullptr;
};

void run_rows(const NormJob& j) {
  const bool avx = vec::has_avx512();
  const int64_t n = j.p.n;
  parallel_for(j.rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, n)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const float* skip = j.skip ? j.skip + (r % j.skip_rows) * n : nullptr;
                   const RowOut o{j.y + r * n, j.sum ? j.sum + r * n : nullptr,
                                  j.mean ? j.mean + r : nullptr,
                                  j.inv_std ? j.inv_std + r : nullptr};
                   if (avx)
                     norm_row_avx512(j.x + r * n, skip, j.p, o);
                   else
                     norm_row_portable(j.x + r * n, skip, j.p, o);
                 }
               });
}

// Dims with leading 1s dropped: how a parameter lines up with the trailing axes.
Dims strip_ones(const Dims& d) {
  size_t k = 0;
  while (k < d.size() && d[k] == 1) ++k;
  return Dims(d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
}

// True when t is float32 and covers exactly the trailing axes x[axis:] (leading 1s aside).
bool is_trailing_param(const Tensor& t, const Tensor& x, size_t axis) {
  if (t.dtype() != DType::F32) return false;
  const Dims want =
      strip_ones(Dims(x.dims().begin() + static_cast<std::ptrdiff_t>(axis), x.dims().end()));
  return strip_ones(t.dims()) == want;
}

bool all_f32_tensors(const ops::KernelContext& ctx, std::initializer_list<size_t> idx) {
  for (size_t i : idx)
    if (ctx.has_input(i) && (!ctx.value(i).is_tensor() || ctx.input(i).dtype() != DType::F32))
      return false;
  return true;
}

// ONNX LayerNormalization (rms = false) and RMSNormalization (rms = true).
class NormKernel final : public ops::Kernel {
 public:
  explicit NormKernel(bool rms) : rms_(rms) {}
  std::string name() const override {
    return rms_ ? "cpu.rms_normalization" : "cpu.layer_normalization";
  }

  void run(ops::KernelContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.has_input(1) || !all_f32_tensors(ctx, {0, 1, 2})) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& x = ctx.input(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    int64_t axis = ctx.attr_int("axis", -1);
    if (axis < 0) axis += rank;
    if (rank == 0 || axis < 0 || axis >= rank || x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    const auto a = static_cast<size_t>(axis);
    const Tensor& scale = ctx.input(1);
    const Tensor* bias = !rms_ && ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (!is_trailing_param(scale, x, a) || (bias && !is_trailing_param(*bias, x, a))) {
      ops::run_reference(ctx);
      return;
    }
    NormJob j;
    j.p.n = 1;
    for (size_t d = a; d < x.rank(); ++d) j.p.n *= x.dims()[d];
    j.rows = x.numel() / j.p.n;
    j.p.gamma = scale.data<float>();
    j.p.beta = bias ? bias->data<float>() : nullptr;
    j.p.eps = ctx.attr_float("epsilon", 1e-5f);
    j.p.rms = rms_;
    j.x = x.data<float>();
    Tensor y = ctx.allocate_output(0, DType::F32, x.dims());
    j.y = y.data<float>();
    Tensor mean, inv;
    Dims stat = x.dims();
    for (size_t d = a; d < stat.size(); ++d) stat[d] = 1;
    if (!rms_ && ctx.wants_output(1)) {
      mean = ctx.allocate_output(1, DType::F32, stat);
      j.mean = mean.data<float>();
    }
    if (!rms_ && ctx.wants_output(2)) {
      inv = ctx.allocate_output(2, DType::F32, stat);
      j.inv_std = inv.data<float>();
    }
    run_rows(j);
    ctx.set_output(0, std::move(y));
    if (j.mean) ctx.set_output(1, std::move(mean));
    if (j.inv_std) ctx.set_output(2, std::move(inv));
  }

 private:
  bool rms_;
};

// com.microsoft SkipLayerNormalization (simplified = false) and
// SkipSimplifiedLayerNormalization (simplified = true): normalize input + skip + bias over
// the last axis.
class SkipNormKernel final : public ops::Kernel {
 public:
  explicit SkipNormKernel(bool simplified) : simplified_(simplified) {}
  std::string name() const override {
    return simplified_ ? "cpu.skip_simplified_layer_norm" : "cpu.skip_layer_norm";
  }

  void run(ops::KernelContext& ctx) const override {
    const size_t bias_index = simplified_ ? 3 : 4;
    if (!ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2) ||
        !all_f32_tensors(ctx, {0, 1, 2, 3, 4}) || (simplified_ && ctx.wants_output(1))) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& x = ctx.input(0);
    const Tensor& skip = ctx.input(1);
    if (x.rank() == 0 || x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    const int64_t hidden = x.dim(-1);
    const auto vector_ok = [&](size_t i) {
      return !ctx.has_input(i) || (ctx.input(i).rank() == 1 && ctx.input(i).dim(0) == hidden);
    };
    // skip: the input's shape, or its trailing axes repeated over the leading ones.
    const Dims sd = strip_ones(skip.dims());
    const bool skip_ok =
        !sd.empty() && sd.size() <= x.rank() && sd.back() == hidden &&
        std::equal(sd.begin(), sd.end(), x.dims().end() - static_cast<std::ptrdiff_t>(sd.size()));
    if (!skip_ok || !vector_ok(2) || !vector_ok(3) || !vector_ok(bias_index)) {
      ops::run_reference(ctx);
      return;
    }
    NormJob j;
    j.p.n = hidden;
    j.rows = x.numel() / hidden;
    j.p.gamma = ctx.input(2).data<float>();
    j.p.beta = !simplified_ && ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
    j.p.bias = ctx.has_input(bias_index) ? ctx.input(bias_index).data<float>() : nullptr;
    j.p.eps = ctx.attr_float("epsilon", 1e-12f);
    j.p.rms = simplified_;
    j.x = x.data<float>();
    j.skip = skip.data<float>();
    j.skip_rows = skip.numel() / hidden;
    Tensor y = ctx.allocate_output(0, DType::F32, x.dims());
    j.y = y.data<float>();
    Dims stat = x.dims();
    stat.back() = 1;
    Tensor mean, inv, sum;
    if (!simplified_ && ctx.wants_output(1)) {
      mean = ctx.allocate_output(1, DType::F32, stat);
      j.mean = mean.data<float>();
    }
    if (ctx.wants_output(2)) {
      inv = ctx.allocate_output(2, DType::F32, stat);
      j.inv_std = inv.data<float>();
    }
    if (ctx.wants_output(3)) {
      sum = ctx.allocate_output(3, DType::F32, x.dims());
      j.sum = sum.data<float>();
    }
    run_rows(j);
    ctx.set_output(0, std::move(y));
    if (j.mean) ctx.set_output(1, std::move(mean));
    if (j.inv_std) ctx.set_output(2, std::move(inv));
    if (j.sum) ctx.set_output(3, std::move(sum));
  }

 private:
  bool simplified_;
};

bool f32_inputs_possible(const PrepareContext& ctx) {
  for (size_t i = 0; i < ctx.node.inputs.size(); ++i)
    if (has_input(ctx.node, i) && !input_may_be(ctx, i, DType::F32)) return false;
  return true;
}

std::unique_ptr<ops::Kernel> prepare_layer_norm(const PrepareContext& ctx) {
  if (!f32_inputs_possible(ctx)) return nullptr;
  // Mean and InvStdDev in another stash type: reference.
  if ((has_output(ctx.node, 1) || has_output(ctx.node, 2)) &&
      ctx.node.attr_int("stash_type", 1) != 1)
    return nullptr;
  return std::make_unique<NormKernel>(false);
}

std::unique_ptr<ops::Kernel> prepare_rms_norm(const PrepareContext& ctx) {
  if (!f32_inputs_possible(ctx)) return nullptr;
  return std::make_unique<NormKernel>(true);
}

std::unique_ptr<ops::Kernel> prepare_skip_norm(const PrepareContext& ctx) {
  if (!f32_inputs_possible(ctx)) return nullptr;
  return std::make_unique<SkipNormKernel>(false);
}

std::unique_ptr<ops::Kernel> prepare_skip_simplified_norm(const PrepareContext& ctx) {
  if (!f32_inputs_possible(ctx)) return nullptr;
  return std::make_unique<SkipNormKernel>(true);
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "LayerNormalization", prepare_layer_norm);
KPT_REGISTER_CPU_KERNEL("", "RMSNormalization", prepare_rms_norm);
KPT_REGISTER_CPU_KERNEL("com.microsoft", "SkipLayerNormalization", prepare_skip_norm);
KPT_REGISTER_CPU_KERNEL("com.microsoft", "SkipSimplifiedLayerNormalization",
                        prepare_skip_simplified_norm);

}  // namespace kpt::cpu
