// LayerNorm, skip-LayerNorm, RMSNorm, softmax, GELU(+bias) and rotary embedding against the
// reference kernels, in f32, f16 and bf16.
#include <cstring>

#include "backends/cuda/fp8.hpp"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/pointwise.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16};

// Outputs are rounded to the type once; the reference computes in double.
double tol(DType dt) {
  return dt == DType::F32 ? 1e-5 : (dt == DType::F16 ? 2e-3 : 1e-2);
}

std::string tag(const char* what, DType dt, int64_t cols) {
  return std::string(what) + " " + std::string(dtype_name(dt)) + " cols " + std::to_string(cols);
}

TEST(CudaNorm, LayerNormMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes)
    // 64..4096 columns run one warp per row (4 rows per block: 37 leaves a partial block),
    // 16384 one block per row.
    for (int64_t cols : {64, 768, 1000, 4096, 16384}) {
      const int64_t rows = 37;
      const Tensor x = random_tensor(dt, {rows, cols}, -3.0f, 5.0f);  // mean far from 0
      const Tensor gamma = random_tensor(dt, {cols}), beta = random_tensor(dt, {cols});
      const auto dx = g.upload(x), dgm = g.upload(gamma), dbt = g.upload(beta);
      auto dy = g.poisoned(dt, {rows, cols});
      cuda::NormArgs a;
      a.dtype = dt;
      a.rows = rows;
      a.cols = cols;
      a.x = dx.data();
      a.gamma = dgm.data();
      a.beta = dbt.data();
      a.y = dy.data();
      a.epsilon = 1e-5f;
      cuda::layer_norm(a, g.stream.get());
      const Tensor want = reference("LayerNormalization", 17, {x, gamma, beta}, 1,
                                    {{"epsilon", float_attr("epsilon", 1e-5f)}})[0];
      expect_close(g.download(dy), want, tol(dt), tag("LayerNorm", dt, cols));
    }
}

TEST(CudaNorm, SkipLayerNormMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes) {
    for (int64_t cols : {768, 1000, 16384}) {
      const int64_t rows = 61;
      const Tensor x = random_tensor(dt, {rows, cols}), skip = random_tensor(dt, {rows, cols});
      const Tensor bias = random_tensor(dt, {cols});
      const Tensor gamma = random_tensor(dt, {cols}), beta = random_tensor(dt, {cols});
      const auto dx = g.upload(x), ds = g.upload(skip), db = g.upload(bias), dgm = g.upload(gamma),
                 dbt = g.upload(beta);
      auto dy = g.poisoned(dt, {rows, cols});
      auto dsum = g.poisoned(dt, {rows, cols});
      cuda::NormArgs a;
      a.dtype = dt;
      a.rows = rows;
      a.cols = cols;
      a.x = dx.data();
      a.skip = ds.data();
      a.bias = db.data();
      a.gamma = dgm.data();
      a.beta = dbt.data();
      a.y = dy.data();
      a.sum = dsum.data();
      a.epsilon = 1e-12f;  // BERT's
      cuda::skip_layer_norm(a, g.stream.get());
      // The unfused graph: (x + skip) + bias, each add rounded to the type, then LayerNorm.
      const Tensor sum = reference("Add", 14, {reference("Add", 14, {x, skip})[0], bias})[0];
      const Tensor want = reference("LayerNormalization", 17, {sum, gamma, beta}, 1,
                                    {{"epsilon", float_attr("epsilon", 1e-12f)}})[0];
      // The fused sum adds in fp32 and rounds once: within one rounding of the unfused one.
      expect_close(g.download(dsum), sum, tol(dt), tag("skip LayerNorm sum", dt, cols));
      expect_close(g.download(dy), want, tol(dt) * 2, tag("skip LayerNorm", dt, cols));
    }
  }
}

// The FP8 plan fusion: a (skip-)LayerNorm writing an e4m3 copy of its output writes the bytes
// the separate quantize pass makes of that output, with the scale's inverse from calibration.
TEST(CudaNorm, E4m3CopyEqualsQuantizingTheOutput) {
  auto& g = gpu();
  const int64_t rows = 48, cols = 768;
  for (bool skip : {false, true}) {
    const Tensor x = random_tensor(DType::F16, {rows, cols}, -3.0f, 3.0f);
    const Tensor s = random_tensor(DType::F16, {rows, cols});
    const Tensor gamma = random_tensor(DType::F16, {cols}, 0.5f, 2.0f);
    const Tensor beta = random_tensor(DType::F16, {cols});
    const auto dx = g.upload(x), ds = g.upload(s), dgm = g.upload(gamma), dbt = g.upload(beta);
    auto dy = g.poisoned(DType::F16, {rows, cols});
    auto dq = g.poisoned(DType::F8E4M3FN, {rows, cols});
    auto dq_ref = g.poisoned(DType::F8E4M3FN, {rows, cols});
    // A scale below the output's range, so that some values saturate.
    cuda::Fp8Calibrator cal;
    cal.observe(DType::F16, dx.data(), dx.numel() / 2, g.stream.get());
    cal.finalize(g.stream.get());
    cuda::NormArgs a;
    a.dtype = DType::F16;
    a.rows = rows;
    a.cols = cols;
    a.x = dx.data();
    a.skip = skip ? ds.data() : nullptr;
    a.gamma = dgm.data();
    a.beta = dbt.data();
    a.y = dy.data();
    a.y_e4m3 = dq.data();
    a.y_e4m3_inverse_scale = cal.inverse_scale();
    if (skip) {
      cuda::skip_layer_norm(a, g.stream.get());
    } else {
      cuda::layer_norm(a, g.stream.get());
    }
    cuda::quantize_e4m3(DType::F16, dy.data(), dy.numel(), cal.scale(), dq_ref.data(),
                        g.stream.get());
    const Tensor got = g.download(dq), want = g.download(dq_ref);
    EXPECT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0)
        << (skip ? "skip " : "") << "LayerNorm's e4m3 copy differs from quantize_e4m3 of y";
  }
}

TEST(CudaNorm, RmsNormMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes) {
    const int64_t rows = 45, cols = 4096;
    const Tensor x = random_tensor(dt, {rows, cols}, -2.0f, 2.0f);
    const Tensor gamma = random_tensor(dt, {cols});
    const auto dx = g.upload(x), dgm = g.upload(gamma);
    auto dy = g.poisoned(dt, {rows, cols});
    cuda::NormArgs a;
    a.dtype = dt;
    a.rows = rows;
    a.cols = cols;
    a.x = dx.data();
    a.gamma = dgm.data();
    a.y = dy.data();
    a.epsilon = 1e-6f;
    cuda::rms_norm(a, g.stream.get());
    const Tensor want = reference("RMSNormalization", 23, {x, gamma}, 1,
                                  {{"epsilon", float_attr("epsilon", 1e-6f)}})[0];
    expect_close(g.download(dy), want, tol(dt), tag("RMSNorm", dt, cols));
  }
}

TEST(CudaPointwise, SoftmaxMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes)
    for (int64_t cols : {128, 1000, 4096}) {
      const int64_t rows = 50;
      const Tensor x = random_tensor(dt, {rows, cols}, -8.0f, 8.0f);
      const auto dx = g.upload(x);
      auto dy = g.poisoned(dt, {rows, cols});
      cuda::softmax(dt, dx.data(), dy.data(), rows, cols, g.stream.get());
      const Tensor want = reference("Softmax", 13, {x}, 1, {{"axis", int_attr("axis", -1)}})[0];
      expect_close(g.download(dy), want, tol(dt) * 2, tag("Softmax", dt, cols));
    }
}

TEST(CudaPointwise, GeluWithBiasMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes)
    for (bool tanh_approx : {false, true}) {
      const int64_t rows = 33, cols = 3072;
      const Tensor x = random_tensor(dt, {rows, cols}, -4.0f, 4.0f);
      const Tensor bias = random_tensor(dt, {cols});
      const auto dx = g.upload(x), db = g.upload(bias);
      auto dy = g.poisoned(dt, {rows, cols});
      cuda::gelu(dt, dx.data(), db.data(), dy.data(), rows, cols, tanh_approx, g.stream.get());
      const Tensor biased = reference("Add", 14, {to_f32(x), to_f32(bias)})[0];
      const Tensor want = reference(
          "Gelu", 20, {biased}, 1,
          {{"approximate", string_attr("approximate", tanh_approx ? "tanh" : "none")}})[0];
      expect_close(g.download(dy), want, tol(dt) * 2,
                   tag(tanh_approx ? "Gelu(tanh)+bias" : "Gelu+bias", dt, cols));
    }
}

TEST(CudaPointwise, RotaryEmbeddingMatchesReference) {
  auto& g = gpu();
  for (DType dt : kTypes)
    for (bool interleaved : {false, true})
      for (int64_t rot : {64, 32}) {
        const int64_t b = 2, h = 3, s = 50, d = 64, max_pos = 128;
        const Tensor x = random_tensor(dt, {b, h, s, d});
        const Tensor cos = random_tensor(dt, {max_pos, rot / 2});
        const Tensor sin = random_tensor(dt, {max_pos, rot / 2});
        Tensor pos(DType::I64, {b, s});
        for (int64_t i = 0; i < b * s; ++i) pos.data<int64_t>()[i] = (i * 37 + 5) % max_pos;
        const auto dx = g.upload(x), dc = g.upload(cos), ds = g.upload(sin), dp = g.upload(pos);
        auto dy = g.poisoned(dt, x.dims());
        cuda::RotaryArgs a;
        a.dtype = dt;
        a.batch = b;
        a.heads = h;
        a.seq = s;
        a.head_size = d;
        a.rotary_dim = rot;
        a.max_pos = max_pos;
        a.x = dx.data();
        a.cos = dc.data();
        a.sin = ds.data();
        a.position_ids = dp.data_as<int64_t>();
        a.y = dy.data();
        a.interleaved = interleaved;
        cuda::rotary_embedding(a, g.stream.get());
        const Tensor want =
            reference("RotaryEmbedding", 23, {x, cos, sin, pos}, 1,
                      {{"interleaved", int_attr("interleaved", interleaved)},
                       {"rotary_embedding_dim", int_attr("rotary_embedding_dim", rot)}})[0];
        expect_close(g.download(dy), want, tol(dt),
                     tag(interleaved ? "Rotary interleaved" : "Rotary", dt, rot));
      }
}

}  // namespace
}  // namespace kpt::gpu_test
