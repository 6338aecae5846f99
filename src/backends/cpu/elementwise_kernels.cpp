// Float32 Add, Sub, Mul, Div where one operand has the output's shape and the other is the same
// shape, a scalar, or constant along one contiguous run of middle axes: out[o][m][i] =
// full[o][m][i] op part[o][i]. That covers bias rows [N] onto [.., N], padding masks
// [B,1,1,S] onto [B,H,S,S] and columns [N,1] onto [N,M]. Other broadcasts and other types go
// to the reference kernel. Safe when the output aliases either input (same index read first).
#include <algorithm>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

enum class Bin { Add, Sub, Mul, Div };

template <Bin B>
inline float apply(float a, float b) {
  if constexpr (B == Bin::Add) return a + b;
  if constexpr (B == Bin::Sub) return a - b;
  if constexpr (B == Bin::Mul) return a * b;
  return a / b;
}

template <Bin B>
KPT_AVX512 inline __m512 apply512(__m512 a, __m512 b) {
  if constexpr (B == Bin::Add) return _mm512_add_ps(a, b);
  if constexpr (B == Bin::Sub) return _mm512_sub_ps(a, b);
  if constexpr (B == Bin::Mul) return _mm512_mul_ps(a, b);
  return _mm512_div_ps(a, b);
}

// y[i] = a[i] op b[i] for i < n; `a_step`/`b_step` 0 repeats element 0 (a broadcast scalar).
template <Bin B>
KPT_AVX512 void span_avx512(const float* a, int64_t a_step, const float* b, int64_t b_step,
                            float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = vec::tail_mask(n - i);
    const __m512 va = a_step ? _mm512_maskz_loadu_ps(k, a + i) : _mm512_set1_ps(a[0]);
    const __m512 vb = b_step ? _mm512_maskz_loadu_ps(k, b + i) : _mm512_set1_ps(b[0]);
    _mm512_mask_storeu_ps(y + i, k, apply512<B>(va, vb));
  }
}

template <Bin B>
void span_portable(const float* a, int64_t a_step, const float* b, int64_t b_step, float* y,
                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = apply<B>(a[i * a_step], b[i * b_step]);
}

using SpanFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t);

template <Bin B>
SpanFn span_fn() {
  return vec::has_avx512() ? &span_avx512<B> : &span_portable<B>;
}

// How the smaller operand lines up with the output: [outer, mid, inner], constant along mid.
struct Split {
  int64_t outer = 1, mid = 1, inner = 1;
};

// True when `part` (left-padded with 1s) equals `out` except for a contiguous run of axes where
// it is 1; fills the split. Same shape gives mid = 1; a scalar gives inner = 1.
bool split_broadcast(const Dims& out, const Dims& part_dims, Split* s) {
  if (part_dims.size() > out.size()) return false;
  Dims part(out.size() - part_dims.size(), 1);
  part.insert(part.end(), part_dims.begin(), part_dims.end());
  const size_t r = out.size();
  size_t lo = 0;  // first axis where part is broadcast
  while (lo < r && part[lo] == out[lo]) ++lo;
  size_t hi = r;  // one past the last broadcast axis
  while (hi > lo && part[hi - 1] == out[hi - 1]) --hi;
  for (size_t d = lo; d < hi; ++d)
    if (part[d] != 1) return false;
  *s = {};
  if (lo == hi) {  // same shape: one flat run
    for (size_t d = 0; d < r; ++d) s->inner *= out[d];
    return true;
  }
  for (size_t d = 0; d < lo; ++d) s->outer *= out[d];
  for (size_t d = lo; d < hi; ++d) s->mid *= out[d];
  for (size_t d = hi; d < r; ++d) s->inner *= out[d];
  return true;
}

template <Bin B>
class BinaryKernel final : public ops::Kernel {
 public:
  explicit BinaryKernel(const char* name) : name_(name) {}
  std::string name() const override { return name_; }

  void run(ops::KernelContext& ctx) const override {
    for (size_t i = 0; i < 2; ++i)
      if (!ctx.has_input(i) || !ctx.value(i).is_tensor() || ctx.input(i).dtype() != DType::F32) {
        ops::run_reference(ctx);
        return;
      }
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    // The operand with the output's shape is the one with more elements (ties: same shape).
    const bool a_full = a.numel() >= b.numel();
    const Tensor& full = a_full ? a : b;
    const Tensor& part = a_full ? b : a;
    Split s;
    if (full.numel() == 0 || !split_broadcast(full.dims(), part.dims(), &s)) {
      ops::run_reference(ctx);
      return;
    }
    Tensor y = ctx.allocate_output(0, DType::F32, full.dims());
    const float* pf = full.data<float>();
    const float* pp = part.data<float>();
    float* py = y.data<float>();
    const SpanFn fn = span_fn<B>();
    const int64_t inner = s.inner, mid = s.mid;
    // Work items are rows of `inner` elements, (outer, mid) of them; chunks of >= 16K floats.
    parallel_for(s.outer * mid, std::max<int64_t>(1, 16384 / inner),
                 [&](int64_t begin, int64_t end) {
                   if (inner == 1) {  // part is one value per outer index over mid elements
                     for (int64_t row = begin; row < end;) {
                       const int64_t o = row / mid;
                       const int64_t stop = std::min(end, (o + 1) * mid);
                       const float* pv = pp + o;
                       if (a_full)
                         fn(pf + row, 1, pv, 0, py + row, stop - row);
                       else
                         fn(pv, 0, pf + row, 1, py + row, stop - row);
                       row = stop;
                     }
                     return;
                   }
                   for (int64_t row = begin; row < end; ++row) {
                     const float* pv = pp + (row / mid) * inner;
                     const int64_t off = row * inner;
                     if (a_full)
                       fn(pf + off, 1, pv, 1, py + off, inner);
                     else
                       fn(pv, 1, pf + off, 1, py + off, inner);
                   }
                 });
    ctx.set_output(0, std::move(y));
  }

 private:
  const char* name_;
};

template <Bin B>
std::unique_ptr<ops::Kernel> prepare(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32) || !input_may_be(ctx, 1, DType::F32)) return nullptr;
  if (ctx.node.opset < 7) return nullptr;  // legacy broadcast/axis attributes
  static const char* names[] = {"cpu.add", "cpu.sub", "cpu.mul", "cpu.div"};
  return std::make_unique<BinaryKernel<B>>(names[static_cast<int>(B)]);
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Add", prepare<Bin::Add>);
KPT_REGISTER_CPU_KERNEL("", "Sub", prepare<Bin::Sub>);
KPT_REGISTER_CPU_KERNEL("", "Mul", prepare<Bin::Mul>);
KPT_REGISTER_CPU_KERNEL("", "Div", prepare<Bin::Div>);

}  // namespace kpt::cpu
