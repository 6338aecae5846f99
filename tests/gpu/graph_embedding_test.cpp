// CUDA graph capture and replay of a kernel chain, and the embedding gather.
#include <cstring>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/embedding.hpp"
#include "backends/cuda/gemm.hpp"
#include "backends/cuda/graph.hpp"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/pointwise.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(CudaGraph, ReplayComputesWhatEagerLaunchesCompute) {
  auto& g = gpu();
  const int64_t rows = 128, hidden = 768, ffn = 3072;
  const DType dt = DType::F16;
  auto x = g.upload(random_tensor(dt, {rows, hidden}));
  const auto gamma = g.upload(random_tensor(dt, {hidden})),
             beta = g.upload(random_tensor(dt, {hidden}));
  const auto w = g.upload(random_tensor(dt, {ffn, hidden}, -0.05f, 0.05f));
  const auto bias = g.upload(random_tensor(dt, {ffn}));
  auto normed = g.poisoned(dt, {rows, hidden});
  auto hiddenv = g.poisoned(dt, {rows, ffn});
  auto out = g.poisoned(dt, {rows, ffn});
  cuda::CublasLtGemm lt;
  // LayerNorm -> GEMM with bias+GELU -> softmax: three kinds of launch, cuBLASLt's included.
  auto chain = [&](cudaStream_t s) {
    cuda::NormArgs n;
    n.dtype = dt;
    n.rows = rows;
    n.cols = hidden;
    n.x = x.data();
    n.gamma = gamma.data();
    n.beta = beta.data();
    n.y = normed.data();
    cuda::layer_norm(n, s);
    lt.run(cuda::GemmPrecision::F16, {rows, ffn, hidden, true}, normed.data(), w.data(),
           hiddenv.data(), s, bias.data(), cuda::Epilogue::BiasGelu);
    cuda::softmax(dt, hiddenv.data(), out.data(), rows, ffn, s);
  };
  chain(g.stream.get());
  const Tensor eager = g.download(out);

  cuda::CapturedGraph graph;
  graph.capture(g.stream.get(), chain);
  EXPECT_GE(graph.node_count(), 3u);
  // Capture runs nothing: the output still holds the eager result, so poison it first.
  KPT_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xFF, out.nbytes(), g.stream.get()));
  graph.replay(g.stream.get());
  EXPECT_TRUE(same_bytes(g.download(out), eager)) << "replay differs from eager launches";

  // New input contents, same buffers: the replay follows the data.
  x.copy_from(random_tensor(dt, {rows, hidden}), g.staging, g.stream.get());
  graph.replay(g.stream.get());
  const Tensor replayed = g.download(out);
  EXPECT_FALSE(same_bytes(replayed, eager)) << "replay ignored the new input";
  chain(g.stream.get());
  EXPECT_TRUE(same_bytes(replayed, g.download(out)));
}

TEST(CudaEmbedding, GatherMatchesReference) {
  auto& g = gpu();
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t hidden : {768, 13}) {  // 13 f16 columns: rows not a multiple of 16 bytes
      const int64_t vocab = 1000, count = 300;
      const Tensor table = random_tensor(dt, {vocab, hidden});
      Tensor ids(DType::I64, {3, count / 3});
      for (int64_t i = 0; i < count; ++i) ids.data<int64_t>()[i] = (i * 7919 + 13) % vocab;
      const auto dtable = g.upload(table), dids = g.upload(ids);
      auto dout = g.poisoned(dt, {3, count / 3, hidden});
      cuda::embedding_gather(dt, dtable.data(), vocab, hidden, dids.data_as<int64_t>(), count,
                             dout.data(), g.stream.get());
      const Tensor want =
          reference("Gather", 13, {table, ids}, 1, {{"axis", int_attr("axis", 0)}})[0];
      const Tensor got = g.download(dout);
      ASSERT_EQ(got.dims(), want.dims());
      EXPECT_TRUE(same_bytes(got, want)) << dtype_name(dt) << " hidden " << hidden;
    }
}

}  // namespace
}  // namespace kpt::gpu_test
