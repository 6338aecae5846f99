// Flash attention against the reference ONNX Attention kernel (opset 23) on the same f16/bf16
// values: both head dims, causal and not, with and without key padding, sizes that are not
// multiples of the kernel's tiles, contiguous and seq-major ([batch, seq, heads, D]) operands;
// every kernel (tile) the device has.
#include "backends/cuda/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>

#include "backends/cuda/device.hpp"
#include "kpt/error.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

struct Case {
  int64_t batch, heads, seq_q, seq_kv, dim;
  bool causal, padded;
  bool seq_major = false;  // operands laid out [batch, seq, heads, D], read through strides
};

// Tiles the comma-separated list in KPT_GPU_ATTENTION_TILES names (to run one kernel alone), or
// `fallback` when it is not set.
std::vector<int> tiles_or(std::vector<int> fallback) {
  const char* env = std::getenv("KPT_GPU_ATTENTION_TILES");
  if (env == nullptr) return fallback;
  std::vector<int> tiles;
  for (const char* c = env; *c != '\0';) {
    char* end = nullptr;
    tiles.push_back(static_cast<int>(std::strtol(c, &end, 10)));
    if (end == c) throw Error(std::string("KPT_GPU_ATTENTION_TILES: not a list of ints: ") + env);
    c = *end == ',' ? end + 1 : end;
  }
  return tiles;
}

bool hopper() {
  const auto& dev = cuda::current_device();
  return dev.major == 9 && dev.minor == 0;
}

// The kernels this device runs: mma.sync everywhere, wgmma on compute capability 9.0. The
// persistent launches (tiles 7, 8) are left to ManyQueryBlocks: with fewer query blocks than
// their grid they launch exactly as tiles 4 and 6.
std::vector<int> device_tiles() {
  if (hopper())
    return tiles_or({2, 3, cuda::kTileWgmma, cuda::kTileWgmmaPingpong, cuda::kTileWgmma64});
  return tiles_or({2, 3});
}

// [d0, d1, d2, d3] -> [d0, d2, d1, d3] (swaps heads and seq), any element size.
Tensor swap_middle(const Tensor& t) {
  const Dims& d = t.dims();
  Tensor out(t.dtype(), {d[0], d[2], d[1], d[3]});
  const size_t row = static_cast<size_t>(d[3]) * dtype_size(t.dtype());
  const auto* src = static_cast<const unsigned char*>(t.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t a = 0; a < d[0]; ++a)
    for (int64_t b = 0; b < d[1]; ++b)
      for (int64_t c = 0; c < d[2]; ++c)
        std::memcpy(dst + ((a * d[2] + c) * d[1] + b) * row,
                    src + ((a * d[1] + b) * d[2] + c) * row, row);
  return out;
}

// Where a failing output is wrong, to tell a layout mistake from a numeric one: the largest
// error by row within 16-row MMA tiles, by 8-column group, and by 64-row block.
void describe_errors(const Tensor& got, const Tensor& want) {
  const Tensor g = to_f32(got);
  const Dims& d = want.dims();
  const int64_t seq = d[2], dim = d[3];
  std::vector<double> by_row16(16), by_col8(static_cast<size_t>(dim / 8)),
      by_block(static_cast<size_t>((seq + 63) / 64));
  for (int64_t bh = 0; bh < d[0] * d[1]; ++bh)
    for (int64_t r = 0; r < seq; ++r)
      for (int64_t col = 0; col < dim; ++col) {
        const int64_t i = (bh * seq + r) * dim + col;
        double e = std::abs(static_cast<double>(g.data<float>()[i]) - want.data<float>()[i]);
        if (!std::isfinite(e)) e = 1e30;
        by_row16[static_cast<size_t>(r % 16)] = std::max(by_row16[static_cast<size_t>(r % 16)], e);
        by_col8[static_cast<size_t>(col / 8)] = std::max(by_col8[static_cast<size_t>(col / 8)], e);
        by_block[static_cast<size_t>(r / 64)] = std::max(by_block[static_cast<size_t>(r / 64)], e);
      }
  auto line = [](const char* what, const std::vector<double>& v) {
    std::cout << "    max |err| by " << what << ":";
    for (double x : v) std::cout << " " << std::setprecision(2) << x;
    std::cout << "\n";
  };
  line("row % 16", by_row16);
  line("column / 8", by_col8);
  line("row / 64", by_block);
}

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
  auto layout = [&](const Tensor& t) { return c.seq_major ? swap_middle(t) : t; };
  const auto dq = g.upload(layout(q)), dk = g.upload(layout(k)), dv = g.upload(layout(v));
  const auto dlens = g.upload(lens);
  auto dout = g.poisoned(dt, layout(q).dims());
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
  if (c.seq_major) {
    a.q_strides = a.o_strides = cuda::HeadStrides::seq_major(c.heads, c.seq_q, c.dim);
    a.k_strides = a.v_strides = cuda::HeadStrides::seq_major(c.heads, c.seq_kv, c.dim);
  }
  cuda::flash_attention(a, g.stream.get());
  const Tensor got = c.seq_major ? swap_middle(g.download(dout)) : g.download(dout);

  std::vector<Tensor> in{to_f32(q), to_f32(k), to_f32(v)};
  if (c.padded) in.push_back(mask);
  const Tensor want =
      reference("Attention", 23, in, 1, {{"is_causal", int_attr("is_causal", c.causal)}})[0];
  // P is rounded to the input type before P*V and the output once more: bf16 keeps 8 bits.
  const double tol = dt == DType::F16 ? 3e-3 : 2e-2;
  if (!(compare(got, want).rel_l2 <= tol)) describe_errors(got, want);
  expect_close(got, want, tol,
               std::string("attention ") + std::string(dtype_name(dt)) + " B" +
                   std::to_string(c.batch) + " H" + std::to_string(c.heads) + " Sq" +
                   std::to_string(c.seq_q) + " Skv" + std::to_string(c.seq_kv) + " D" +
                   std::to_string(c.dim) + (c.causal ? " causal" : "") +
                   (c.padded ? " padded" : "") + (c.seq_major ? " seq-major" : "") + " tile " +
                   std::to_string(tile));
}

TEST(CudaAttention, MatchesReference) {
  for (DType dt : {DType::F16, DType::BF16})
    for (int64_t dim : {64, 128})
      for (bool causal : {false, true})
        for (bool padded : {false, true})
          for (int tile : device_tiles()) run_case(dt, {2, 3, 200, 200, dim, causal, padded}, tile);
}

// Longer than the wgmma kernel's 128-key blocks and 128-row query blocks several times over,
// with lengths that end mid-block.
TEST(CudaAttention, LongSequences) {
  for (DType dt : {DType::F16, DType::BF16})
    for (int tile : device_tiles()) {
      run_case(dt, {1, 2, 600, 600, 128, true, true}, tile);
      run_case(dt, {2, 2, 520, 777, 64, false, true}, tile);
    }
}

// The executor's layout: Q, K, V and O read and written as [batch, seq, heads, D].
TEST(CudaAttention, SeqMajorOperands) {
  for (DType dt : {DType::F16, DType::BF16})
    for (int tile : device_tiles()) {
      run_case(dt, {2, 3, 130, 130, 64, false, true, true}, tile);
      run_case(dt, {2, 3, 257, 257, 128, true, false, true}, tile);
      run_case(dt, {3, 1, 100, 150, 64, false, true, true}, tile);  // one head
    }
}

TEST(CudaAttention, UnequalQueryAndKeyLengths) {
  for (DType dt : {DType::F16, DType::BF16}) {
    run_case(dt, {1, 2, 70, 300, 128, false, false});
    run_case(dt, {2, 2, 129, 65, 64, false, true});
    run_case(dt, {1, 4, 300, 300, 128, true, false});
    for (int tile : device_tiles()) {
      run_case(dt, {1, 4, 300, 300, 128, true, false}, tile);
      run_case(dt, {1, 2, 300, 70, 64, true, true}, tile);
    }
  }
}

// More query blocks than the GPU holds at once (200 to 300 of 64 or 128 rows; the persistent
// grids are 132 and 264 blocks): the persistent kernels give blocks of threads several, in turn,
// carrying the K/V ring's stages and phases from one to the next (causal: 1 or 2 key blocks).
TEST(CudaAttention, ManyQueryBlocks) {
  if (!hopper()) GTEST_SKIP() << "the persistent launches need compute capability 9.0";
  for (int tile : tiles_or({cuda::kTileWgmmaPersistent, cuda::kTileWgmma64Persistent}))
    if (tile == cuda::kTileWgmmaPersistent || tile == cuda::kTileWgmma64Persistent) {
      run_case(DType::F16, {3, 100, 64, 130, 64, false, true, true}, tile);
      run_case(DType::BF16, {1, 100, 130, 200, 64, true, true}, tile);  // 1 or 2 key blocks
    }
}

TEST(CudaAttention, RejectsUnsupportedHeadDim) {
  cuda::AttentionArgs a;
  a.dtype = DType::F16;
  a.batch = a.heads = a.seq_q = a.seq_kv = 1;
  a.head_dim = 96;
  EXPECT_THROW(cuda::flash_attention(a, gpu().stream.get()), Unsupported);
}

TEST(CudaAttention, RejectsUnknownTile) {
  cuda::AttentionArgs a;
  a.dtype = DType::F16;
  a.batch = a.heads = a.seq_q = a.seq_kv = 1;
  a.head_dim = 64;
  a.tile = 9;
  EXPECT_THROW(cuda::flash_attention(a, gpu().stream.get()), Error);
}

}  // namespace
}  // namespace kpt::gpu_test
