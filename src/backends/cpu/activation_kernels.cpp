// Float32 element-wise activations: Gelu (erf and tanh forms), Relu, Sigmoid, Tanh, Erf, with
// the AVX-512 approximations of vec_math.hpp (a few ulp from the C library) and a portable
// path with the C library's functions. Parallel over chunks; safe when the output aliases the
// input (element i is read before it is written).
#include <cmath>
#include <memory>
#include <string>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

enum class Act { GeluErf, GeluTanh, Relu, Sigmoid, Tanh, Erf };

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kGeluTanhK = 0.79788456080286536f;  // sqrt(2 / pi)

float act_scalar(Act a, float x) {
  switch (a) {
    case Act::GeluErf:
      return 0.5f * x * (1.0f + std::erf(x * kSqrtHalf));
    case Act::GeluTanh:
      return 0.5f * x * (1.0f + std::tanh(kGeluTanhK * (x + 0.044715f * x * x * x)));
    case Act::Relu:
      return x > 0.0f ? x : 0.0f;  // NaN gives 0, as the reference kernel
    case Act::Sigmoid:
      return x >= 0 ? 1.0f / (1.0f + std::exp(-x)) : std::exp(x) / (1.0f + std::exp(x));
    case Act::Tanh:
      return std::tanh(x);
    case Act::Erf:
      return std::erf(x);
  }
  return x;
}

template <Act A>
KPT_AVX512 inline __m512 act512(__m512 x) {
  if constexpr (A == Act::GeluErf) {
    const __m512 e = vec::erf512(_mm512_mul_ps(x, _mm512_set1_ps(kSqrtHalf)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  } else if constexpr (A == Act::GeluTanh) {
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(kGeluTanhK),
                                   _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), vec::tanh512(u)));
  } else if constexpr (A == Act::Relu) {
    return _mm512_max_ps(x, _mm512_setzero_ps());  // NaN gives the second operand, 0
  } else if constexpr (A == Act::Sigmoid) {
    return vec::sigmoid512(x);
  } else if constexpr (A == Act::Tanh) {
    return vec::tanh512(x);
  } else {
    return vec::erf512(x);
  }
}

template <Act A>
KPT_AVX512 void map_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, act512<A>(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = vec::tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, act512<A>(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

using MapFn = void (*)(const float*, float*, int64_t);

MapFn avx512_map(Act a) {
  switch (a) {
    case Act::GeluErf:
      return &map_avx512<Act::GeluErf>;
    case Act::GeluTanh:
      return &map_avx512<Act::GeluTanh>;
    case Act::Relu:
      return &map_avx512<Act::Relu>;
    case Act::Sigmoid:
      return &map_avx512<Act::Sigmoid>;
    case Act::Tanh:
      return &map_avx512<Act::Tanh>;
    case Act::Erf:
      return &map_avx512<Act::Erf>;
  }
  return nullptr;
}

const char* act_name(Act a) {
  switch (a) {
    case Act::GeluErf:
      return "cpu.gelu(erf)";
    case Act::GeluTanh:
      return "cpu.gelu(tanh)";
    case Act::Relu:
      return "cpu.relu";
    case Act::Sigmoid:
      return "cpu.sigmoid";
    case Act::Tanh:
      return "cpu.tanh";
    case Act::Erf:
      return "cpu.erf";
  }
  return "cpu.activation";
}

class ActivationKernel final : public ops::Kernel {
 public:
  explicit ActivationKernel(Act a) : act_(a) {}
  std::string name() const override { return act_name(act_); }

  void run(ops::KernelContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.input(0).dtype() != DType::F32) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& x = ctx.input(0);
    Tensor y = ctx.allocate_output(0, DType::F32, x.dims());
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const MapFn fn = vec::has_avx512() ? avx512_map(act_) : nullptr;
    const Act a = act_;
    // Chunks of whole cache lines so that threads never share one.
    parallel_for((x.numel() + 15) / 16, 1024, [&](int64_t begin, int64_t end) {
      const int64_t lo = begin * 16, hi = std::min(end * 16, x.numel());
      if (fn) {
        fn(px + lo, py + lo, hi - lo);
      } else {
        for (int64_t i = lo; i < hi; ++i) py[i] = act_scalar(a, px[i]);
      }
    });
    ctx.set_output(0, std::move(y));
  }

 private:
  Act act_;
};

template <Act A>
std::unique_ptr<ops::Kernel> prepare(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32)) return nullptr;
  return std::make_unique<ActivationKernel>(A);
}

std::unique_ptr<ops::Kernel> prepare_gelu(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32)) return nullptr;
  const std::string approx = ctx.node.attr_string("approximate", "none");
  if (approx == "none") return std::make_unique<ActivationKernel>(Act::GeluErf);
  if (approx == "tanh") return std::make_unique<ActivationKernel>(Act::GeluTanh);
  return nullptr;  // the reference kernel reports the bad attribute
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Gelu", prepare_gelu);
KPT_REGISTER_CPU_KERNEL("", "Relu", prepare<Act::Relu>);
KPT_REGISTER_CPU_KERNEL("", "Sigmoid", prepare<Act::Sigmoid>);
KPT_REGISTER_CPU_KERNEL("", "Tanh", prepare<Act::Tanh>);
KPT_REGISTER_CPU_KERNEL("", "Erf", prepare<Act::Erf>);

}  // namespace kpt::cpu
