// Flash attention against the reference ONNX Attention kernel (opset 23) on the same f16/bf16
// values: both head dims, causal and not, with and without key padding, sizes that are not
// multiples of the kernel's tiles.
#include "backends/cuda/attention.hpp"

#include "kpt/error.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

struct Case {
  int64_t batch, heads, seq_q, seq_kv, dim;
  bool causal, padded;
};

void run_case(DType dt, const Case& c, int tile = 0) {
  auto& g = gpu();
  const Tensor q = random_tensor(dt, {c.batch, c.heads, c.seq_q, c.dim}, -2.0f, 2.0f);
  const Tensor k = random_tensor(dt, {c.batch, c.heads, c.seq_kv, c.dim}, -2.0f, 2.0f);
  const Tensor v = random_tensor(dt, {c.batch, c.heads, c.seq_kv, c.dim});
  // Padding: batch b keeps a different number of keys (at least one).
  Tensor lens(DType::I32, {c.batch});
  Tensor mask(DType::Bool, {c.batch, 1, 1, c.seq_kv});
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t len = c.padded ? std::max<int64_t>(1, c.seq_kv - 37 * (b + 1)) : c.seq_kv;
    lens.data<int32_t>()[b] = static_cast<int32_t>(len);
    for (int64_t j = 0; j < c.seq_kv; ++j) mask.data<bool>()[b * c.seq_kv + j] = j < len;
  }
  const auto dq = g.upload(q), dk = g.upload(k), dv = g.upload(v), dlens = g.upload(lens);
  auto dout = g.poisoned(dt, q.dims());
  cuda::AttentionArgs a;
  a.dtype = dt;
  a.batch = c.batch;
  a.heads = c.heads;
  a.seq_q = c.seq_q;
  a.seq_kv = c.seq_kv;
  a.head_dim = c.dim;
  a.q = dq.data();
  a.k = dk.data();
  a.v = dv.data();
  a.o = dout.data();
  a.causal = c.causal;
  a.kv_lens = c.padded ? dlens.data_as<int32_t>() : nullptr;
  a.tile = tile;
  cuda::flash_attention(a, g.stream.get());
  const Tensor got = g.download(dout);

  std::vector<Tensor> in{to_f32(q), to_f32(k), to_f32(v)};
  if (c.padded) in.push_back(mask);
  const Tensor want =
      reference("Attention", 23, in, 1, {{"is_causal", int_attr("is_causal", c.causal)}})[0];
  // P is rounded to the input type before P*V and the output once more: bf16 keeps 8 bits.
  const double tol = dt == DType::F16 ? 3e-3 : 2e-2;
  expect_close(got, want, tol,
               std::string("attention ") + std::string(dtype_name(dt)) + " B" +
                   std::to_string(c.batch) + " H" + std::to_string(c.heads) + " Sq" +
                   std::to_string(c.seq_q) + " Skv" + std::to_string(c.seq_kv) + " D" +
                   std::to_string(c.dim) + (c.causal ? " causal" : "") +
                   (c.padded ? " padded" : "") + " tile " + std::to_string(tile));
}

TEST(CudaAttention, MatchesReference) {
  for (DType dt : {DType::F16, DType::BF16})
    for (int64_t dim : {64, 128})
      for (bool causal : {false, true})
        for (bool padded : {false, true})
          for (int tile : {2, 3}) run_case(dt, {2, 3, 200, 200, dim, causal, padded}, tile);
}

TEST(CudaAttention, UnequalQueryAndKeyLengths) {
  for (DType dt : {DType::F16, DType::BF16}) {
    run_case(dt, {1, 2, 70, 300, 128, false, false});
    run_case(dt, {2, 2, 129, 65, 64, false, true});
    run_case(dt, {1, 4, 300, 300, 128, true, false});
    run_case(dt, {1, 4, 300, 300, 128, true, false}, 2);
  }
}

TEST(CudaAttention, RejectsUnsupportedHeadDim) {
  cuda::AttentionArgs a;
  a.dtype = DType::F16;
  a.batch = a.heads = a.seq_q = a.seq_kv = 1;
  a.head_dim = 96;
  EXPECT_THROW(cuda::flash_attention(a, gpu().stream.get()), Unsupported);
}

}  // namespace
}  // namespace kpt::gpu_test
