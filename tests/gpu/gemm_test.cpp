// cuBLASLt GEMMs with fused epilogues and FP8 GEMMs, against the CPU reference Gemm (and
// Relu/Gelu) on the same input values.
#include "backends/cuda/gemm.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/fp8.hpp"
#include "backends/cuda/fp8_product.hpp"
#include "backends/cuda/graph.hpp"
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

// Tuning times the heuristic's candidates at a problem's first run and keeps the fastest:
// whichever it keeps computes the same product, and a first run inside a graph capture (where
// nothing can be timed) leaves the plan untuned until an eager run.
TEST(CudaGemm, TunedPlansComputeTheSameProductAndCaptureDefersTuning) {
  auto& g = gpu();
  const int64_t m = 1024, n = 2304, k = 768;  // BERT's QKV projection at 1024 tokens
  const Tensor a = random_tensor(DType::F16, {m, k});
  const Tensor b = random_tensor(DType::F16, {n, k}, -0.05f, 0.05f);
  const Tensor bias = random_tensor(DType::F16, {n});
  const auto da = g.upload(a), db = g.upload(b), dbias = g.upload(bias);
  const Tensor want = reference_gemm(a, b, true, bias, Epilogue::BiasGelu);
  for (bool tune : {true, false}) {
    cuda::CublasLtGemm gemm(tune);
    auto dc = g.poisoned(DType::F16, {m, n});
    gemm.run(GemmPrecision::F16, {m, n, k, true}, da.data(), db.data(), dc.data(), g.stream.get(),
             dbias.data(), Epilogue::BiasGelu);
    expect_close(g.download(dc), want, 2e-3, tune ? "tuned" : "heuristic's first");
    const std::string summary = gemm.tuning_summary();
    EXPECT_NE(summary.find(tune ? "1 tuned" : "0 tuned"), std::string::npos) << summary;
  }
  cuda::CublasLtGemm gemm(true);
  auto dc = g.poisoned(DType::F16, {m, n});
  auto product = [&](cudaStream_t s) {
    gemm.run(GemmPrecision::F16, {m, n, k, true}, da.data(), db.data(), dc.data(), s, dbias.data(),
             Epilogue::BiasGelu);
  };
  cuda::CapturedGraph graph;
  graph.capture(g.stream.get(), product);
  EXPECT_NE(gemm.tuning_summary().find("0 tuned"), std::string::npos) << gemm.tuning_summary();
  graph.replay(g.stream.get());
  expect_close(g.download(dc), want, 2e-3, "replayed before tuning");
  product(g.stream.get());
  EXPECT_NE(gemm.tuning_summary().find("1 tuned"), std::string::npos) << gemm.tuning_summary();
  expect_close(g.download(dc), want, 2e-3, "eager after tuning");
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

class PoolRunAllocator final : public cuda::RunAllocator {
 public:
  cuda::DeviceBuffer allocate(DType dtype, Dims dims) override {
    return cuda::DeviceBuffer::allocate(dtype, std::move(dims), gpu().pool, gpu().stream.get());
  }
};

// Slice i of a tensor [count, ...] as a tensor of `dims`.
Tensor slice_of(const Tensor& t, int64_t i, const Dims& dims) {
  Tensor r(t.dtype(), dims);
  std::memcpy(r.raw(), static_cast<const char*>(t.raw()) + i * static_cast<int64_t>(r.nbytes()),
              r.nbytes());
  return r;
}

// The executor's FP8 weight GEMM (fp8_product.hpp): the f32 weight quantized on the host at load
// ([K, N], [N, K] or stacked siblings [3, K, N]), the activation scale from an f16 calibration
// run (amax / 448 exactly), then FP8 runs against the product of the host-quantized operands;
// rows FP8 cannot take (not a multiple of 16) run the f16 product.
TEST(CudaFp8, ProductKernelMatchesQuantizedReference) {
  auto& g = gpu();
  const int64_t k = 256, n = 128;
  struct Variant {
    bool transposed;
    int64_t count;
    Epilogue e;
  };
  for (const Variant& var :
       {Variant{false, 1, Epilogue::BiasGelu}, Variant{true, 1, Epilogue::Bias},
        Variant{false, 3, Epilogue::Bias}, Variant{false, 1, Epilogue::None}}) {
    const std::string tag = std::string(var.transposed ? " W^T" : " W") + " x" +
                            std::to_string(var.count) + " " + cuda::to_string(var.e);
    const Dims wd = var.count > 1    ? Dims{var.count, k, n}
                    : var.transposed ? Dims{n, k}
                                     : Dims{k, n};
    const Tensor w = random_tensor(DType::F32, wd, -0.1f, 0.1f);
    const Tensor w16 = cast_tensor(w, DType::F16);
    const Tensor bias = random_tensor(DType::F16, var.count > 1 ? Dims{var.count, n} : Dims{n});
    const auto dw16 = g.upload(w16), dbias = g.upload(bias);
    cuda::Fp8ProductKernel kernel(&w, var.transposed, var.count, var.e, "");
    kernel.load();
    float w_amax = 0;
    for (int64_t i = 0; i < w.numel(); ++i)
      w_amax = std::max(w_amax, std::fabs(w.data<float>()[i]));
    EXPECT_FLOAT_EQ(kernel.weight_scale(), w_amax / cuda::kE4M3Max) << tag;
    PoolRunAllocator alloc;
    cuda::GpuRunContext ctx{g.stream.get(), lt(), alloc, nullptr, nullptr};
    auto run = [&](const cuda::DeviceBuffer& x) {
      cuda::GpuArgs a;
      a.in = {&x, &dw16, &dbias};
      a.out.resize(static_cast<size_t>(var.count));
      kernel.run(ctx, a);
      std::vector<Tensor> outs;
      for (const auto& o : a.out) outs.push_back(g.download(o));
      return outs;
    };
    for (int64_t m : {96, 40}) {
      const Tensor x = random_tensor(DType::F16, {m, k}, -2.0f, 2.0f);
      const auto dx = g.upload(x);
      if (m == 96) {  // calibrate on this batch: its own amax, so nothing saturates
        kernel.start_calibration(g.stream.get());
        run(dx);
        kernel.finish_calibration(g.stream.get());
      }
      const std::vector<Tensor> got = run(dx);
      const Tensor xf = to_f32(x);
      float x_amax = 0;
      for (int64_t i = 0; i < xf.numel(); ++i)
        x_amax = std::max(x_amax, std::fabs(xf.data<float>()[i]));
      const float sx = kernel.activation_scale(g.stream.get());
      if (m == 96) {
        EXPECT_FLOAT_EQ(sx, x_amax / cuda::kE4M3Max) << tag;
      }
      const Tensor wq = quantize_dequantize(w, kernel.weight_scale());
      const Tensor w16f = to_f32(w16);
      const Dims one = var.transposed ? Dims{n, k} : Dims{k, n};
      for (int64_t i = 0; i < var.count; ++i) {
        const Tensor b_i = slice_of(to_f32(bias), i, {n});
        const std::string what =
            "fp8 product M" + std::to_string(m) + tag + " output " + std::to_string(i);
        if (m % 16 == 0) {
          expect_close(got[static_cast<size_t>(i)],
                       reference_gemm(quantize_dequantize(x, sx), slice_of(wq, i, one),
                                      var.transposed, b_i, var.e),
                       1e-2, what + " vs quantized reference");
          expect_close(got[static_cast<size_t>(i)],
                       reference_gemm(x, slice_of(w, i, one), var.transposed, b_i, var.e), 6e-2,
                       what + " vs unquantized reference");
        } else {
          expect_close(got[static_cast<size_t>(i)],
                       reference_gemm(x, slice_of(w16f, i, one), var.transposed, b_i, var.e), 2e-3,
                       what + " (f16 product)");
        }
      }
    }
  }
}

// An FP8 product writing its output in e4m3 for the next one (the plan's FFN in -> out fusion)
// computes what the two products with a quantize pass between them compute, up to the f16
// rounding before e4m3 that the fusion skips.
TEST(CudaFp8, ProductWritingE4m3ForTheNextMatchesUnfusedChain) {
  auto& g = gpu();
  const int64_t m = 64, k = 256, n1 = 512, n2 = 128;
  const Tensor w1 = random_tensor(DType::F32, {k, n1}, -0.1f, 0.1f);
  const Tensor w2 = random_tensor(DType::F32, {n1, n2}, -0.1f, 0.1f);
  const Tensor b1 = random_tensor(DType::F16, {n1}), b2 = random_tensor(DType::F16, {n2});
  const auto dw1 = g.upload(cast_tensor(w1, DType::F16)),
             dw2 = g.upload(cast_tensor(w2, DType::F16));
  const auto db1 = g.upload(b1), db2 = g.upload(b2);
  cuda::Fp8ProductKernel first(&w1, false, 1, Epilogue::BiasGelu, "Gelu");
  cuda::Fp8ProductKernel second(&w2, false, 1, Epilogue::Bias, "");
  first.load();
  second.load();
  PoolRunAllocator alloc;
  cuda::GpuRunContext ctx{g.stream.get(), lt(), alloc, nullptr, nullptr};
  auto run = [&](const cuda::Fp8ProductKernel& kern, const cuda::DeviceBuffer& x,
                 const cuda::DeviceBuffer& w, const cuda::DeviceBuffer& b) {
    cuda::GpuArgs a;
    a.in = {&x, &w, &b};
    a.out.resize(1);
    kern.run(ctx, a);
    return a.out[0];
  };
  const auto dx = g.upload(random_tensor(DType::F16, {m, k}, -2.0f, 2.0f));
  first.start_calibration(g.stream.get());
  second.start_calibration(g.stream.get());
  run(second, run(first, dx, dw1, db1), dw2, db2);
  first.finish_calibration(g.stream.get());
  second.finish_calibration(g.stream.get());

  const cuda::DeviceBuffer h = run(first, dx, dw1, db1);
  ASSERT_EQ(h.dtype(), DType::F16);
  const Tensor unfused = g.download(run(second, h, dw2, db2));
  first.write_e4m3_for(&second);
  const std::string form = first.settle_e4m3_output(lt(), g.stream.get());
  std::printf("  FFN-in style product (bias+GELU) writing e4m3: %s\n", form.c_str());
  ASSERT_EQ(form.rfind("e4m3 output", 0), 0u) << form;
  const cuda::DeviceBuffer h8 = run(first, dx, dw1, db1);
  ASSERT_EQ(h8.dtype(), DType::F8E4M3FN);
  const Tensor fused = g.download(run(second, h8, dw2, db2));
  EXPECT_NE(first.name().find("-> e4m3"), std::string::npos) << first.name();
  expect_close(fused, unfused, 1e-2, "fp8 chain with the e4m3 hand-off vs quantize pass");
  // The hand-off's bytes: those the quantize pass makes of the f16 output, but for the values
  // the skipped f16 rounding moves across an e4m3 rounding boundary.
  const Tensor hq = g.download(h8), hf = to_f32(g.download(h));
  const float inv = 1.0f / second.activation_scale(g.stream.get());
  int64_t differ = 0;
  for (int64_t i = 0; i < hf.numel(); ++i)
    differ +=
        hq.data<uint8_t>()[i] != float_to_f8(DType::F8E4M3FN, hf.data<float>()[i] * inv, true);
  EXPECT_LT(differ, hf.numel() / 50) << differ << " of " << hf.numel() << " e4m3 bytes differ";
}

}  // namespace
}  // namespace kpt::gpu_test
