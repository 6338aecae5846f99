// cuBLASLt GEMMs with fused epilogues and FP8 GEMMs, against the CPU reference Gemm (and
// Relu/Gelu) on the same input values.
#include "backends/cuda/gemm.hpp"

#include <cmath>
#include <memory>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/fp8.hpp"
#include "core/cast.hpp"
#include "kpt/error.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

using cuda::Epilogue;
using cuda::GemmPrecision;

cuda::CublasLtGemm& lt() {
  static cuda::CublasLtGemm g;
  return g;
}

DType storage(GemmPrecision p) {
  if (p == GemmPrecision::F16) return DType::F16;
  if (p == GemmPrecision::BF16) return DType::BF16;
  return DType::F32;
}

// rel-L2 budgets: f32 accumulates in a different order only; tf32 rounds operands to 10-bit
// mantissas; f16/bf16 round the output (the inputs are the same values on both sides).
double tolerance(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::F32:
      return 1e-5;
    case GemmPrecision::TF32:
      return 3e-3;
    case GemmPrecision::F16:
      return 2e-3;
    case GemmPrecision::BF16:
      return 1e-2;
  }
  return 0;
}

// C = A*B (+bias, +activation) on the CPU: the reference Gemm, then Relu or Gelu(tanh).
Tensor reference_gemm(const Tensor& a, const Tensor& b, bool b_transposed, const Tensor& bias,
                      Epilogue e) {
  std::map<std::string, ir::Attribute> attrs{{"transB", int_attr("transB", b_transposed)}};
  std::vector<Tensor> in{to_f32(a), to_f32(b)};
  if (e != Epilogue::None) in.push_back(to_f32(bias));
  Tensor c = reference("Gemm", 13, in, 1, attrs)[0];
  if (e == Epilogue::BiasRelu) c = reference("Relu", 14, {c})[0];
  if (e == Epilogue::BiasGelu)
    c = reference("Gelu", 20, {c}, 1, {{"approximate", string_attr("approximate", "tanh")}})[0];
  return c;
}

TEST(CudaGemm, MatchesReferenceForEveryPrecisionAndEpilogue) {
  auto& g = gpu();
  const int64_t m = 77, n = 96, k = 136;
  for (GemmPrecision p :
       {GemmPrecision::F32, GemmPrecision::TF32, GemmPrecision::F16, GemmPrecision::BF16}) {
    for (Epilogue e : {Epilogue::None, Epilogue::Bias, Epilogue::BiasGelu, Epilogue::BiasRelu}) {
      for (bool bt : {false, true}) {
        const DType dt = storage(p);
        const Tensor a = random_tensor(dt, {m, k});
        const Tensor b = random_tensor(dt, bt ? Dims{n, k} : Dims{k, n});
        const Tensor bias = random_tensor(dt, {n});
        const auto da = g.upload(a), db = g.upload(b), dbias = g.upload(bias);
        auto dc = g.poisoned(dt, {m, n});
        lt().run(p, cuda::GemmShape{m, n, k, bt}, da.data(), db.data(), dc.data(), g.stream.get(),
                 e == Epilogue::None ? nullptr : dbias.data(), e);
        const Tensor got = g.download(dc);
        expect_close(
            got, reference_gemm(a, b, bt, bias, e), tolerance(p),
            "gemm " + cuda::to_string(p) + " " + cuda::to_string(e) + (bt ? " B^T" : " B"));
      }
    }
  }
}

TEST(CudaGemm, LargeBf16ProductMatchesReference) {
  auto& g = gpu();
  const int64_t m = 512, n = 1024, k = 768;  // BERT-base's FFN-in shape at 512 tokens
  const Tensor a = random_tensor(DType::BF16, {m, k});
  const Tensor b = random_tensor(DType::BF16, {n, k});
  const Tensor bias = random_tensor(DType::BF16, {n});
  const auto da = g.upload(a), db = g.upload(b), dbias = g.upload(bias);
  auto dc = g.poisoned(DType::BF16, {m, n});
  lt().run(GemmPrecision::BF16, {m, n, k, true}, da.data(), db.data(), dc.data(), g.stream.get(),
           dbias.data(), Epilogue::BiasGelu);
  expect_close(g.download(dc), reference_gemm(a, b, true, bias, Epilogue::BiasGelu), 1e-2,
               "gemm bf16 512x1024x768 bias+gelu");
}

// Host-side e4m3 quantization with the same scale: what the FP8 GEMM must compute exactly
// (up to fp32 summation order and the bf16 output rounding).
Tensor quantize_dequantize(const Tensor& x, float scale) {
  const Tensor f = to_f32(x);
  Tensor r(DType::F32, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i) {
    const uint8_t q = float_to_f8(DType::F8E4M3FN, f.data<float>()[i] * (1.0f / scale), true);
    r.data<float>()[i] = f8_to_float(DType::F8E4M3FN, q) * scale;
  }
  return r;
}

TEST(CudaFp8, CalibrationFindsAmaxAndScale) {
  auto& g = gpu();
  cuda::Fp8Calibrator cal;
  float host_amax = 0;
  // Several batches, of a range that grows: the calibrator keeps the largest |x| seen.
  for (float range : {0.5f, 3.0f, 2.0f}) {
    const Tensor x = random_tensor(DType::BF16, {333, 77}, -range, range);
    const Tensor xf = to_f32(x);
    for (int64_t i = 0; i < xf.numel(); ++i)
      host_amax = std::max(host_amax, std::fabs(xf.data<float>()[i]));
    const auto dx = g.upload(x);
    cal.observe(DType::BF16, dx.data(), dx.numel(), g.stream.get());
  }
  cal.finalize(g.stream.get());
  EXPECT_EQ(cal.amax_host(g.stream.get()), host_amax);
  EXPECT_FLOAT_EQ(cal.scale_host(g.stream.get()), host_amax / cuda::kE4M3Max);
}

TEST(CudaFp8, GemmRejectsShapesCublasLtCannotRun) {
  cuda::Fp8GemmArgs args;
  args.m = 200;  // not a multiple of 16
  args.n = 256;
  args.k = 512;
  EXPECT_THROW(lt().run_fp8(args, gpu().stream.get()), Error);
}

TEST(CudaFp8, GemmWithCalibratedScalesMatchesReference) {
  auto& g = gpu();
  const int64_t n = 256, k = 512;
  struct Variant {
    int64_t m;
    bool fast, bias;
  };
  for (const Variant& var :
       {Variant{208, false, false}, Variant{208, false, true}, Variant{256, true, true}}) {
    const int64_t m = var.m;
    const bool fast = var.fast;
    const Tensor a = random_tensor(DType::BF16, {m, k}, -2.0f, 2.0f);
    const Tensor b = random_tensor(DType::BF16, {n, k}, -0.1f, 0.1f);  // weight-like range
    const Tensor bias = random_tensor(DType::BF16, {n});
    const auto da = g.upload(a), db = g.upload(b), dbias = g.upload(bias);
    cuda::Fp8Calibrator ca, cb;
    ca.observe(DType::BF16, da.data(), da.numel(), g.stream.get());
    cb.observe(DType::BF16, db.data(), db.numel(), g.stream.get());
    ca.finalize(g.stream.get());
    cb.finalize(g.stream.get());
    auto qa = cuda::DeviceBuffer::allocate(DType::F8E4M3FN, {m, k}, g.pool, g.stream.get());
    auto qb = cuda::DeviceBuffer::allocate(DType::F8E4M3FN, {n, k}, g.pool, g.stream.get());
    cuda::quantize_e4m3(DType::BF16, da.data(), da.numel(), ca.scale(), qa.data(), g.stream.get());
    cuda::quantize_e4m3(DType::BF16, db.data(), db.numel(), cb.scale(), qb.data(), g.stream.get());
    // The device quantizer agrees with the host's e4m3 rounding.
    const float sa = ca.scale_host(g.stream.get()), sb = cb.scale_host(g.stream.get());
    const Tensor qa_host = g.download(qa);
    const Tensor af = to_f32(a);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < af.numel(); ++i)
      mismatches += qa_host.data<uint8_t>()[i] !=
                    float_to_f8(DType::F8E4M3FN, af.data<float>()[i] * (1.0f / sa), true);
    EXPECT_EQ(mismatches, 0) << "device e4m3 quantization differs from the host's";

    auto dc = g.poisoned(DType::BF16, {m, n});
    cuda::Fp8GemmArgs args;
    args.m = m;
    args.n = n;
    args.k = k;
    args.a = qa.data();
    args.b = qb.data();
    args.a_scale = ca.scale();
    args.b_scale = cb.scale();
    args.c = dc.data();
    args.out = DType::BF16;
    args.bias = var.bias ? dbias.data() : nullptr;
    args.epilogue = var.bias ? Epilogue::Bias : Epilogue::None;
    args.fast_accum = fast;
    lt().run_fp8(args, g.stream.get());
    const Tensor got = g.download(dc);
    const Epilogue e = var.bias ? Epilogue::Bias : Epilogue::None;
    const std::string tag = " M" + std::to_string(m) + (var.bias ? " +bias" : "") +
                            (fast ? " (fast accumulation)" : "");
    expect_close(
        got, reference_gemm(quantize_dequantize(a, sa), quantize_dequantize(b, sb), true, bias, e),
        1e-2, "fp8 gemm vs quantized reference" + tag);
    // Against the unquantized product: the error e4m3 itself brings (3 mantissa bits).
    expect_close(got, reference_gemm(a, b, true, bias, e), 6e-2,
                 "fp8 gemm vs bf16 reference" + tag);
  }
}

// The order cuBLASLt applies a residual (its C, beta = 1), the bias and ReLU in:
// relu(A*B + R + bias[column]); and, as the convolutions run it, batched with A shared and the
// residual per batch, relu(A*B[i] + R[i]) with the ReLU-only epilogue.
TEST(CudaGemm, ResidualBiasReluOrder) {
  auto& g = gpu();
  const int64_t m = 40, n = 56, k = 24;
  for (bool batched : {false, true}) {
    const DType dt = DType::F16;
    const int64_t groups = batched ? 3 : 1;
    const Tensor a = random_tensor(dt, {m, k});
    const Tensor b = random_tensor(dt, {groups, k, n});
    const Tensor r = random_tensor(dt, {groups, m, n});
    const Tensor bias = random_tensor(dt, {n});
    const auto da = g.upload(a), db = g.upload(b), dr = g.upload(r), dbias = g.upload(bias);
    auto dc = g.poisoned(dt, {groups, m, n});
    lt().run(GemmPrecision::F16, {m, n, k, false, groups}, da.data(), db.data(), dc.data(),
             g.stream.get(), batched ? nullptr : dbias.data(),
             batched ? Epilogue::Relu : Epilogue::BiasRelu, 1.0f, dr.data());
    const Tensor af = to_f32(a), bf = to_f32(b), rf = to_f32(r), biasf = to_f32(bias);
    Tensor want(DType::F32, {groups, m, n});
    for (int64_t q = 0; q < groups; ++q)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t t = 0; t < k; ++t)
            acc += double(af.data<float>()[i * k + t]) * bf.data<float>()[(q * k + t) * n + j];
          acc += rf.data<float>()[(q * m + i) * n + j] + (batched ? 0.0 : biasf.data<float>()[j]);
          want.data<float>()[(q * m + i) * n + j] = static_cast<float>(std::max(acc, 0.0));
        }
    expect_close(g.download(dc), want, 2e-3,
                 batched ? "relu(A*B[i] + R[i]), batched" : "relu(A*B + R + bias)");
  }
}

}  // namespace
}  // namespace kpt::gpu_test
