// Fast CPU kernels (src/backends/cpu: attention, norms, softmax, activations, elementwise)
// against the reference kernels on fresh random inputs, and the AVX-512 math approximations
// against the C library. Tolerances: attention 1e-4, norms/softmax 1e-5, activations 1e-5
// relative plus a small absolute floor where the reference itself cancels (stated per test).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/attention_kernel.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ir/graph.hpp"
#include "ops/run_node.hpp"

namespace kpt {
namespace {

std::mt19937& rng() {
  static std::mt19937 g(std::random_device{}());
  return g;
}

Tensor random_f32(const Dims& dims, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::uninitialized(DType::F32, dims);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng());
  return t;
}

Tensor random_bool(const Dims& dims, double p_true) {
  Tensor t(DType::Bool, dims);
  std::bernoulli_distribution d(p_true);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = d(rng()) ? 1 : 0;
  return t;
}

ir::Node make_node(const std::string& op, size_t inputs, int opset,
                   const std::vector<ir::Attribute>& attrs = {}, const std::string& domain = "",
                   size_t outputs = 1) {
  ir::Node n;
  n.op_type = op;
  n.domain = domain;
  n.opset = opset;
  for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < outputs; ++i) n.outputs.push_back("out" + std::to_string(i));
  for (const auto& a : attrs) n.attrs[a.name] = a;
  return n;
}

// Runs the node with its reference kernel (fast = false) or the fast kernel the CPU registry
// prepares for it (which must exist and carry `kernel_name`). Undefined tensors are omitted
// optional inputs.
std::vector<Tensor> run_once(ir::Node node, const std::vector<Tensor>& inputs, bool fast,
                             const std::string& kernel_name) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined()) node.inputs[i].clear();
  std::vector<Value> values;
  values.reserve(inputs.size());
  std::vector<const Value*> ptrs;
  for (const auto& t : inputs) {
    values.push_back(t.defined() ? Value::of(t) : Value::none());
    ptrs.push_back(t.defined() ? &values.back() : nullptr);
  }
  std::unique_ptr<ops::Kernel> kernel;
  if (fast) {
    cpu::PrepareContext pc{node, std::vector<const ir::Type*>(inputs.size(), nullptr),
                           std::vector<const Tensor*>(inputs.size(), nullptr),
                           std::vector<const ir::Type*>(node.outputs.size(), nullptr)};
    kernel = cpu::KernelRegistry::instance().prepare(pc);
    EXPECT_NE(kernel, nullptr) << node.op_type;
    if (kernel && !kernel_name.empty()) {
      EXPECT_EQ(kernel->name(), kernel_name);
    }
  }
  std::vector<Value> out = ops::run_node(node, ptrs, nullptr, kernel.get());
  std::vector<Tensor> r;
  for (auto& v : out) r.push_back(v.is_tensor() ? v.tensor : Tensor());
  return r;
}

// The fast kernel's result; on AVX-512 machines its portable path must agree with it too (to
// 1e-5 relative: the vector exp/erf/tanh differ from the C library's by a few ulp).
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what);
std::vector<Tensor> run(const ir::Node& node, const std::vector<Tensor>& inputs, bool fast,
                        const std::string& kernel_name = "") {
  std::vector<Tensor> out = run_once(node, inputs, fast, kernel_name);
  if (fast && cpu::vec::has_avx512()) {
    cpu::vec::avx512_disabled = true;
    const std::vector<Tensor> portable = run_once(node, inputs, fast, kernel_name);
    cpu::vec::avx512_disabled = false;
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i].defined() && out[i].dtype() == DType::F32)
        expect_close(portable[i], out[i], 1e-5, 1e-6, node.op_type + " portable path");
  }
  return out;
}

// |a - b| <= atol + rtol |b| elementwise, reporting the worst element.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  ASSERT_EQ(got.dtype(), DType::F32) << what;
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    if (std::isnan(w) && std::isnan(g)) continue;
    const double excess = std::fabs(g - w) - (atol + rtol * std::fabs(w));
    if (std::isnan(g) || std::isnan(w) || excess > worst) {
      worst = std::isnan(g) || std::isnan(w) ? 1e30 : excess;
      at = i;
    }
  }
  EXPECT_EQ(at, -1) << what << ": element " << at << " got " << got.data<float>()[at] << " want "
                    << want.data<float>()[at];
}

// ---- vector math ----------------------------------------------------------------------------

template <class F>
std::vector<float> apply_avx512(F f, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i + 16 <= x.size(); i += 16) f(x.data() + i, y.data() + i);
  return y;
}

KPT_AVX512 void exp16(const float* x, float* y) {
  _mm512_storeu_ps(y, cpu::vec::exp512(_mm512_loadu_ps(x)));
}
KPT_AVX512 void erf16(const float* x, float* y) {
  _mm512_storeu_ps(y, cpu::vec::erf512(_mm512_loadu_ps(x)));
}
KPT_AVX512 void tanh16(const float* x, float* y) {
  _mm512_storeu_ps(y, cpu::vec::tanh512(_mm512_loadu_ps(x)));
}

std::vector<float> grid(float lo, float hi, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * static_cast<float>(i) / (n - 1);
  return x;
}

// Largest error in units of float32 epsilon relative to max(|want|, floor).
double worst_eps(const std::vector<float>& got, const std::vector<float>& x, double (*ref)(double),
                 double floor) {
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = ref(x[i]);
    const double e = std::fabs(got[i] - w) / std::max(std::fabs(w), floor);
    worst = std::max(worst, e / std::numeric_limits<float>::epsilon());
  }
  return worst;
}

TEST(CpuVecMath, ExpErfTanhAreWithinAFewUlp) {
  if (!cpu::vec::has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const std::vector<float> xe = grid(-87.0f, 88.0f, 160000);
  EXPECT_LT(worst_eps(
                apply_avx512(exp16, xe), xe, [](double v) { return std::exp(v); }, 0),
            4);
  const std::vector<float> xs = grid(-6.0f, 6.0f, 160000);
  EXPECT_LT(worst_eps(
                apply_avx512(erf16, xs), xs, [](double v) { return std::erf(v); }, 0),
            4);
  EXPECT_LT(worst_eps(
                apply_avx512(tanh16, xs), xs, [](double v) { return std::tanh(v); }, 0),
            4);
  // Tiny arguments keep their relative accuracy (no 1 - (1 - x) cancellation).
  const std::vector<float> tiny = grid(-1e-3f, 1e-3f, 1600);
  EXPECT_LT(worst_eps(
                apply_avx512(tanh16, tiny), tiny, [](double v) { return std::tanh(v); }, 0),
            4);
  EXPECT_LT(worst_eps(
                apply_avx512(erf16, tiny), tiny, [](double v) { return std::erf(v); }, 0),
            4);
  // Limits: overflow, underflow, saturation, NaN.
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> edge = {100.0f, -200.0f, inf,   -inf, nan,  0.0f,  -0.0f,  30.0f,
                             -30.0f, 9.0f,    -9.0f, 4.5f, 1.0f, -1.0f, 0.625f, 89.5f};
  const auto e = apply_avx512(exp16, edge);
  EXPECT_EQ(e[0], inf);
  EXPECT_EQ(e[1], 0.0f);
  EXPECT_EQ(e[2], inf);
  EXPECT_EQ(e[3], 0.0f);
  EXPECT_TRUE(std::isnan(e[4]));
  EXPECT_EQ(e[5], 1.0f);
  EXPECT_EQ(e[15], inf);
  const auto t = apply_avx512(tanh16, edge);
  EXPECT_EQ(t[2], 1.0f);
  EXPECT_EQ(t[3], -1.0f);
  EXPECT_TRUE(std::isnan(t[4]));
  EXPECT_EQ(t[7], 1.0f);
  EXPECT_EQ(t[8], -1.0f);
  const auto r = apply_avx512(erf16, edge);
  EXPECT_EQ(r[2], 1.0f);
  EXPECT_EQ(r[3], -1.0f);
  EXPECT_TRUE(std::isnan(r[4]));
  EXPECT_EQ(r[11], 1.0f);
  EXPECT_FLOAT_EQ(r[12], std::erf(1.0f));
}

// ---- attention --------------------------------------------------------------------------------

struct AttentionCase {
  int64_t B, Hq, Hkv, Sq, L, D, Dv;
  bool three_d;
  bool causal;
  int mask;  // 0 none, 1 bool, 2 float
  Dims mask_dims;
  bool fully_masked_row;
  int opset;
  float scale;  // 0: default
  AttentionCase(int64_t b, int64_t hq, int64_t hkv, int64_t sq, int64_t l, int64_t d, int64_t dv,
                bool three_d_ = false, bool causal_ = false, int mask_ = 0, Dims mask_dims_ = {},
                bool fully_masked_row_ = false, int opset_ = 23, float scale_ = 0)
      : B(b),
        Hq(hq),
        Hkv(hkv),
        Sq(sq),
        L(l),
        D(d),
        Dv(dv),
        three_d(three_d_),
        causal(causal_),
        mask(mask_),
        mask_dims(std::move(mask_dims_)),
        fully_masked_row(fully_masked_row_),
        opset(opset_),
        scale(scale_) {}
};

void check_attention(const AttentionCase& c) {
  std::vector<ir::Attribute> attrs;
  if (c.causal) attrs.push_back(ir::Attribute::of_int("is_causal", 1));
  if (c.scale != 0) attrs.push_back(ir::Attribute::of_float("scale", c.scale));
  Tensor q, k, v;
  if (c.three_d) {
    attrs.push_back(ir::Attribute::of_int("q_num_heads", c.Hq));
    attrs.push_back(ir::Attribute::of_int("kv_num_heads", c.Hkv));
    q = random_f32({c.B, c.Sq, c.Hq * c.D}, -2, 2);
    k = random_f32({c.B, c.L, c.Hkv * c.D}, -2, 2);
    v = random_f32({c.B, c.L, c.Hkv * c.Dv});
  } else {
    q = random_f32({c.B, c.Hq, c.Sq, c.D}, -2, 2);
    k = random_f32({c.B, c.Hkv, c.L, c.D}, -2, 2);
    v = random_f32({c.B, c.Hkv, c.L, c.Dv});
  }
  std::vector<Tensor> in = {q, k, v};
  if (c.mask != 0) {
    Tensor m = c.mask == 1 ? random_bool(c.mask_dims, 0.7) : random_f32(c.mask_dims, -3, 1);
    if (c.mask == 2) {  // some -inf entries, as exporters write for padding
      for (int64_t i = 0; i < m.numel(); i += 5)
        m.data<float>()[i] = -std::numeric_limits<float>::infinity();
    }
    if (c.fully_masked_row) {  // the first query row of every broadcast slice
      const int64_t width = m.dim(-1);
      for (int64_t j = 0; j < width; ++j) {
        if (c.mask == 1)
          m.data<uint8_t>()[j] = 0;
        else
          m.data<float>()[j] = -std::numeric_limits<float>::infinity();
      }
    }
    in.push_back(m);
  }
  const ir::Node n = make_node("Attention", in.size(), c.opset, attrs, "", 1);
  const auto want = run(n, in, false);
  const auto got = run(n, in, true, "cpu.attention(flash)");
  const std::string what =
      "B" + std::to_string(c.B) + " Hq" + std::to_string(c.Hq) + " Hkv" + std::to_string(c.Hkv) +
      " Sq" + std::to_string(c.Sq) + " L" + std::to_string(c.L) + " D" + std::to_string(c.D) +
      " Dv" + std::to_string(c.Dv) + (c.causal ? " causal" : "") + " mask" + std::to_string(c.mask);
  expect_close(got[0], want[0], 1e-4, 1e-4, what);
  if (c.fully_masked_row && c.mask_dims.size() == 4 && c.mask_dims[2] > 1) {
    // Row 0 of batch 0, head 0 had every key masked: zeros, as the reference has it.
    for (int64_t d = 0; d < c.Dv; ++d) EXPECT_EQ(got[0].data<float>()[d], 0.0f) << what;
  }
}

TEST(CpuAttention, PlainSizesNotMultiplesOf16) {
  check_attention({1, 2, 2, 7, 7, 8, 8});
  check_attention({2, 3, 3, 37, 53, 24, 24});
  check_attention({1, 2, 2, 130, 70, 40, 72});  // Dv != D, several query blocks
  check_attention({1, 1, 1, 1, 300, 64, 64});   // one query (decoding shape)
}

TEST(CpuAttention, CausalWithSqNotEqualSkv) {
  check_attention({1, 2, 2, 33, 33, 16, 16, false, true});
  check_attention({2, 2, 2, 100, 150, 32, 32, false, true});
  check_attention({1, 2, 2, 150, 90, 32, 32, false, true});
}

TEST(CpuAttention, BoolAndFloatMasksBroadcastWithFullyMaskedRow) {
  for (int kind : {1, 2}) {
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {2, 3, 19, 45}, true});
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {2, 1, 19, 45}, true});
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {2, 1, 1, 45}});  // padding
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {19, 45}, true});
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {45}});
    check_attention({2, 3, 3, 19, 45, 16, 16, false, true, kind, {1, 3, 19, 45}, true});
    check_attention({2, 3, 3, 19, 45, 16, 16, false, false, kind, {2, 3, 19, 1}});  // opset 23
  }
}

TEST(CpuAttention, ShortMaskAtOpset24MasksTheRemainingKeys) {
  check_attention({1, 2, 2, 9, 80, 16, 16, false, false, 1, {1, 1, 9, 70}, false, 24});
  check_attention({1, 2, 2, 9, 80, 16, 16, false, false, 2, {1, 2, 9, 20}, false, 24});
}

TEST(CpuAttention, ThreeDimensionalGroupedQueryAndScale) {
  check_attention({2, 4, 4, 21, 21, 16, 16, true});
  check_attention({2, 6, 2, 21, 50, 16, 24, true, true});
  check_attention({1, 8, 2, 65, 65, 32, 32, false, false, 2, {1, 1, 65, 65}, false, 23, 0.3f});
}

TEST(CpuAttention, LongSequencesExerciseTiling) {
  check_attention({1, 1, 1, 1024, 1024, 64, 64});
  check_attention({1, 1, 1, 1024, 1024, 64, 64, false, true});
  check_attention({1, 1, 1, 100, 1030, 64, 64, false, false, 1, {1, 1, 1, 1030}});
}

TEST(CpuAttention, PortablePathMatchesTheAvx512Path) {
  cpu::AttentionProblem p;
  p.batch = 1, p.q_heads = 2, p.kv_heads = 1, p.q_len = 70, p.kv_len = 130, p.head = 20;
  p.v_head = 36;
  const Tensor q = random_f32({2, 70, 20}), k = random_f32({1, 130, 20}),
               v = random_f32({1, 130, 36});
  Tensor m = random_bool({70, 130}, 0.6);
  Tensor y1(DType::F32, {2, 70, 36}), y2(DType::F32, {2, 70, 36});
  p.q = q.data<float>(), p.q_sh = 70 * 20, p.q_ss = 20;
  p.k = k.data<float>(), p.k_ss = 20;
  p.v = v.data<float>(), p.v_ss = 36;
  p.y_sh = 70 * 36, p.y_ss = 36;
  p.scale = 0.2f;
  p.causal = true;
  p.mask = m.raw(), p.mask_is_bool = true, p.m_si = 130, p.m_sj = 1, p.mask_width = 130;
  p.y = y1.data<float>();
  cpu::flash_attention(p);
  p.y = y2.data<float>();
  cpu::flash_attention_portable(p);
  expect_close(y1, y2, 1e-5, 1e-6, "portable vs dispatched");
}

TEST(CpuAttention, DeclinesWhatItDoesNotHandle) {
  const ir::Node softcap =
      make_node("Attention", 3, 23, {ir::Attribute::of_float("softcap", 5.0f)});
  cpu::PrepareContext pc{softcap, {nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr}, {}};
  EXPECT_EQ(cpu::KernelRegistry::instance().prepare(pc), nullptr);
  const ir::Node present = make_node("Attention", 3, 23, {}, "", 3);
  cpu::PrepareContext pc2{present, {nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr}, {}};
  EXPECT_EQ(cpu::KernelRegistry::instance().prepare(pc2), nullptr);
  // A float16 input seen only at run time goes to the reference kernel.
  const ir::Node n = make_node("Attention", 3, 23);
  Tensor q(DType::F16, {1, 1, 2, 4}), k(DType::F16, {1, 1, 2, 4}), v(DType::F16, {1, 1, 2, 4});
  const auto out = run(n, {q, k, v}, true, "cpu.attention(flash)");
  EXPECT_EQ(out[0].dtype(), DType::F16);
}

// ---- norms ----------------------------------------------------------------------------------

TEST(CpuNorms, LayerNormalizationLastAndTrailingAxesWithStatistics) {
  // {64, 300}: enough rows to split across threads.
  for (const Dims& dims :
       std::vector<Dims>{{3, 7, 37}, {5, 768}, {2, 3, 4, 5}, {1, 4099}, {64, 300}}) {
    for (int64_t axis : {-1, -2}) {
      if (axis == -2 && dims.size() < 3) continue;
      const Dims pdims(dims.end() + axis, dims.end());
      const std::vector<Tensor> in = {random_f32(dims, -3, 5), random_f32(pdims),
                                      random_f32(pdims)};
      const ir::Node n = make_node(
          "LayerNormalization", 3, 17,
          {ir::Attribute::of_int("axis", axis), ir::Attribute::of_float("epsilon", 1e-5f)}, "", 3);
      const auto want = run(n, in, false);
      const auto got = run(n, in, true, "cpu.layer_normalization");
      for (size_t o = 0; o < 3; ++o)
        expect_close(got[o], want[o], 1e-5, 1e-5, "LayerNorm output " + std::to_string(o));
    }
  }
  // Without bias, and with a scale that carries leading 1s.
  const std::vector<Tensor> in = {random_f32({4, 33}), random_f32({1, 33})};
  const ir::Node n = make_node("LayerNormalization", 2, 17);
  expect_close(run(n, in, true, "cpu.layer_normalization")[0], run(n, in, false)[0], 1e-5, 1e-5,
               "LayerNorm no bias");
  // A scale over a different axis than the normalized ones: reference kernel, same answer.
  const std::vector<Tensor> odd = {random_f32({4, 6}), random_f32({4, 1}), random_f32({6})};
  const ir::Node n2 = make_node("LayerNormalization", 3, 17);
  expect_close(run(n2, odd, true)[0], run(n2, odd, false)[0], 1e-6, 1e-6, "LayerNorm fallback");
}

TEST(CpuNorms, RmsNormalization) {
  for (const Dims& dims : std::vector<Dims>{{3, 7, 37}, {2, 4096}, {9, 5}}) {
    const std::vector<Tensor> in = {random_f32(dims, -3, 3), random_f32({dims.back()})};
    const ir::Node n =
        make_node("RMSNormalization", 2, 23, {ir::Attribute::of_float("epsilon", 1e-6f)});
    expect_close(run(n, in, true, "cpu.rms_normalization")[0], run(n, in, false)[0], 1e-5, 1e-5,
                 "RMSNorm");
  }
}

// Plain double-precision loops for the com.microsoft skip norms (the reference kernels live
// in another part of the tree): s = x + skip + bias; y = (s - mean) / sqrt(var + eps) * gamma
// + beta, or s / sqrt(mean(s^2) + eps) * gamma for the simplified form.
struct SkipNormWant {
  std::vector<double> y, mean, inv, sum;
};
SkipNormWant skip_norm_loop(const Tensor& x, const Tensor& skip, const Tensor& gamma,
                            const Tensor* beta, const Tensor* bias, double eps, bool simplified) {
  const int64_t h = x.dim(-1), rows = x.numel() / h, skip_rows = skip.numel() / h;
  SkipNormWant w;
  w.y.resize(static_cast<size_t>(x.numel()));
  w.sum = w.y;
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, var = 0;
    for (int64_t i = 0; i < h; ++i) {
      double s = x.data<float>()[r * h + i] + skip.data<float>()[(r % skip_rows) * h + i];
      if (bias) s += bias->data<float>()[i];
      w.sum[static_cast<size_t>(r * h + i)] = s;
      m += s;
    }
    m = simplified ? 0.0 : m / static_cast<double>(h);
    for (int64_t i = 0; i < h; ++i) {
      const double d = w.sum[static_cast<size_t>(r * h + i)] - m;
      var += d * d;
    }
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(h) + eps);
    w.mean.push_back(m);
    w.inv.push_back(inv);
    for (int64_t i = 0; i < h; ++i)
      w.y[static_cast<size_t>(r * h + i)] =
          (w.sum[static_cast<size_t>(r * h + i)] - m) * inv * gamma.data<float>()[i] +
          (beta ? beta->data<float>()[i] : 0.0);
  }
  return w;
}

Tensor to_f32(const std::vector<double>& v, const Dims& dims) {
  Tensor t(DType::F32, dims);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = static_cast<float>(v[i]);
  return t;
}

TEST(CpuNorms, SkipLayerNormalizationAgainstPlainLoop) {
  for (bool simplified : {false, true}) {
    for (bool broadcast_skip : {false, true}) {
      const Dims dims{2, 9, 200};
      const Tensor x = random_f32(dims, -2, 2);
      const Tensor skip = broadcast_skip ? random_f32({9, 200}) : random_f32(dims);
      const Tensor gamma = random_f32({200}), beta = random_f32({200}), bias = random_f32({200});
      std::vector<Tensor> in = {x, skip, gamma};
      if (!simplified) in.push_back(beta);
      in.push_back(bias);
      const std::string op =
          simplified ? "SkipSimplifiedLayerNormalization" : "SkipLayerNormalization";
      const ir::Node n = make_node(op, in.size(), 1, {ir::Attribute::of_float("epsilon", 1e-6f)},
                                   "com.microsoft", 4);
      ir::Node node = n;
      if (simplified) node.outputs[1].clear();  // the simplified form has no mean output
      const auto got = run(node, in, true,
                           simplified ? "cpu.skip_simplified_layer_norm" : "cpu.skip_layer_norm");
      const SkipNormWant w =
          skip_norm_loop(x, skip, gamma, simplified ? nullptr : &beta, &bias, 1e-6, simplified);
      Dims stat = dims;
      stat.back() = 1;
      expect_close(got[0], to_f32(w.y, dims), 1e-5, 1e-5, op + " output");
      if (!simplified) expect_close(got[1], to_f32(w.mean, stat), 1e-5, 1e-5, op + " mean");
      expect_close(got[2], to_f32(w.inv, stat), 1e-5, 1e-5, op + " inv_std_var");
      expect_close(got[3], to_f32(w.sum, dims), 1e-6, 1e-6, op + " sum");
    }
  }
}

// ---- softmax, activations, elementwise ---------------------------------------------------------

TEST(CpuSoftmax, LastAxisAndFlattenedTrailingAxes) {
  for (const Dims& dims : std::vector<Dims>{{3, 5, 77}, {4, 128}, {2, 1000}, {7, 3}, {300, 64}}) {
    Tensor x = random_f32(dims, -8, 8);
    x.data<float>()[0] = -std::numeric_limits<float>::infinity();
    const ir::Node n = make_node("Softmax", 1, 13);
    expect_close(run(n, {x}, true, "cpu.softmax")[0], run(n, {x}, false)[0], 1e-5, 1e-7, "Softmax");
  }
  // Opset 11, axis 1 of a 3-D input: softmax over the flattened [1:] axes.
  const Tensor x = random_f32({3, 4, 21}, -5, 5);
  const ir::Node n = make_node("Softmax", 1, 11, {ir::Attribute::of_int("axis", 1)});
  expect_close(run(n, {x}, true, "cpu.softmax")[0], run(n, {x}, false)[0], 1e-5, 1e-7,
               "Softmax opset 11");
  // An inner axis goes to the reference kernel.
  const ir::Node inner = make_node("Softmax", 1, 13, {ir::Attribute::of_int("axis", 1)});
  expect_close(run(inner, {x}, true)[0], run(inner, {x}, false)[0], 1e-6, 0, "inner axis");
  // A NaN poisons its row only.
  Tensor y = random_f32({2, 19});
  y.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  const auto got = run(make_node("Softmax", 1, 13), {y}, true)[0];
  for (int64_t i = 0; i < 19; ++i) EXPECT_TRUE(std::isnan(got.data<float>()[i]));
  for (int64_t i = 19; i < 38; ++i) EXPECT_FALSE(std::isnan(got.data<float>()[i]));
}

TEST(CpuActivations, GeluReluSigmoidTanhErf) {
  // 40 x 1001 elements: split across threads at a 16-element boundary, with a masked tail.
  const Tensor x = random_f32({40, 1001}, -9, 9);
  struct Case {
    std::string op;
    std::vector<ir::Attribute> attrs;
    std::string kernel;
    int opset;
  };
  const std::vector<Case> cases = {
      {"Gelu", {}, "cpu.gelu(erf)", 20},
      {"Gelu", {ir::Attribute::of_string("approximate", "tanh")}, "cpu.gelu(tanh)", 20},
      {"Relu", {}, "cpu.relu", 14},
      {"Sigmoid", {}, "cpu.sigmoid", 13},
      {"Tanh", {}, "cpu.tanh", 13},
      {"Erf", {}, "cpu.erf", 13},
  };
  for (const auto& c : cases) {
    const ir::Node n = make_node(c.op, 1, c.opset, c.attrs);
    // 1e-5 relative; 1e-6 absolute where 1 + erf/tanh cancels in the reference's float math.
    expect_close(run(n, {x}, true, c.kernel)[0], run(n, {x}, false)[0], 1e-5, 1e-6, c.kernel);
  }
}

TEST(CpuElementwise, SameShapeScalarRowsMasksAndColumns) {
  struct Case {
    Dims a, b;
  };
  const std::vector<Case> cases = {
      {{3, 5, 37}, {3, 5, 37}},         // same shape
      {{4, 7, 65}, {65}},               // bias row
      {{65}, {4, 7, 65}},               // bias row on the left
      {{2, 3, 17, 17}, {2, 1, 1, 17}},  // padding mask
      {{9, 33}, {9, 1}},                // columns
      {{9, 33}, {}},                    // scalar
      {{1}, {5, 6}},                    // scalar on the left
      {{5, 1}, {1, 6}},                 // both broadcast: reference
      {{300, 257}, {300, 1}},           // large enough to split across threads
      {{64, 3, 1000}, {1000}},
      {{8, 1, 1, 129}, {8, 12, 33, 129}},
  };
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& c : cases) {
      const std::vector<Tensor> in = {random_f32(c.a, 0.5f, 2.0f), random_f32(c.b, 0.5f, 2.0f)};
      const ir::Node n = make_node(op, 2, 14);
      expect_close(run(n, in, true)[0], run(n, in, false)[0], 1e-6, 0,
                   std::string(op) + " " + in[0].describe() + " " + in[1].describe());
    }
  }
  // Integer inputs go to the reference kernel.
  Tensor ia(DType::I64, {3}), ib(DType::I64, {3});
  for (int i = 0; i < 3; ++i) ia.data<int64_t>()[i] = i + 1, ib.data<int64_t>()[i] = 10;
  const auto out = run(make_node("Add", 2, 14), {ia, ib}, true)[0];
  EXPECT_EQ(out.data<int64_t>()[2], 13);
}

}  // namespace
}  // namespace kpt
