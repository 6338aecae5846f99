// kpt_gpu_bench: times the CUDA backend's kernels on the current GPU with CUDA events (median of
// repeated launches after warm-up, fresh random inputs, never zeros) and prints a table, plus
// JSON with --json FILE. scripts/gpu_bench_torch.py times PyTorch on the same shapes; run both
// through scripts/gpu-check.sh.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "backends/cuda/attention.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/fp8.hpp"
#include "backends/cuda/gemm.hpp"
#include "backends/cuda/graph.hpp"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/stream.hpp"
#include "kpt/tensor.hpp"
#include "tools/gpu_bench/event_timing.hpp"

namespace {

using namespace kpt;
using gpu_bench::time_ms;

struct Row {
  std::string kernel, shape;
  double ms = 0, tflops = 0, gbps = 0;
};

// Random device data without a host round trip: uniform bytes reinterpreted would give NaNs,
// so floats are drawn on the host once in a small pattern buffer and tiled.
void fill_random(cuda::DeviceBuffer& b, float range, cudaStream_t s) {
  const int64_t pattern = std::min<int64_t>(b.numel(), 1 << 20);
  Tensor host(DType::F32, {pattern});
  uint64_t x = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(b.numel());
  for (int64_t i = 0; i < pattern; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    host.data<float>()[i] =
        range * (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f);
  }
  const size_t esize = dtype_size(b.dtype());
  std::vector<uint8_t> bytes(static_cast<size_t>(pattern) * esize);
  for (int64_t i = 0; i < pattern; ++i) {
    const float f = host.data<float>()[i];
    if (b.dtype() == DType::F32) {
      std::memcpy(&bytes[i * 4], &f, 4);
    } else if (b.dtype() == DType::F16) {
      const uint16_t h = float_to_half(f);
      std::memcpy(&bytes[i * 2], &h, 2);
    } else if (b.dtype() == DType::BF16) {
      const uint16_t h = float_to_bfloat16(f);
      std::memcpy(&bytes[i * 2], &h, 2);
    } else if (b.dtype() == DType::F8E4M3FN) {
      bytes[i] = float_to_f8(b.dtype(), f, true);
    } else {
      bytes[i] = static_cast<uint8_t>(x);  // byte data: the generator's bits
    }
  }
  auto* dst = static_cast<uint8_t*>(b.data());
  const size_t total = b.nbytes(), chunk = bytes.size();
  for (size_t off = 0; off < total; off += chunk)
    KPT_CUDA_CHECK(cudaMemcpyAsync(dst + off, bytes.data(), std::min(chunk, total - off),
                                   cudaMemcpyHostToDevice, s));
  KPT_CUDA_CHECK(cudaStreamSynchronize(s));
}

void print(const std::vector<Row>& rows) {
  // The last column is GB/s for memory-bound rows, sequences/s for the model-shaped chains.
  std::printf("%-34s %-26s %10s %10s %10s\n", "kernel", "shape", "ms", "TFLOP/s", "GB/s|seq/s");
  for (const auto& r : rows)
    std::printf("%-34s %-26s %10.4f %10.1f %10.1f\n", r.kernel.c_str(), r.shape.c_str(), r.ms,
                r.tflops, r.gbps);
}

void write_json(const std::vector<Row>& rows, const std::string& path, const std::string& device) {
  std::ofstream f(path);
  f << "{\n  \"device\": \"" << device << "\",\n  \"results\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    f << "    {\"kernel\": \"" << r.kernel << "\", \"shape\": \"" << r.shape
      << "\", \"ms\": " << r.ms << ", \"tflops\": " << r.tflops << ", \"gbps\": " << r.gbps << "}"
      << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  f << "  ]\n}\n";
}

}  // namespace

// An FP8 product of A [M,K] and B [N,K] (e4m3) with device scales into C of type `out`.
cuda::Fp8GemmArgs fp8_args(int64_t m, int64_t n, int64_t k, const cuda::DeviceBuffer& a,
                           const cuda::DeviceBuffer& b, const cuda::DeviceBuffer& scale_a,
                           const cuda::DeviceBuffer& scale_b, cuda::DeviceBuffer& c, DType out) {
  cuda::Fp8GemmArgs args;
  args.m = m;
  args.n = n;
  args.k = k;
  args.a = a.data();
  args.b = b.data();
  args.a_scale = static_cast<const float*>(scale_a.data());
  args.b_scale = static_cast<const float*>(scale_b.data());
  args.c = c.data();
  args.out = out;
  return args;
}

// BERT-base's four weight products at batch 32 x seq 128 (M = 4096 tokens), in f16 and in FP8
// (f16 output, the model's epilogues), each with cuBLASLt's heuristic first choice and tuned
// (the fastest of its candidates), plus the standalone e4m3 quantize an FP8 product pays when
// no producer writes its input in e4m3: what FP8 saves per product, the facts the FP8
// selection's cost model stands on.
void bench_bert_products(std::vector<Row>& rows, cudaStream_t s, cuda::DevicePool& pool,
                         const std::function<cuda::DeviceBuffer(DType, Dims, float)>& buffer) {
  struct P {
    const char* name;
    int64_t n, k, batch;
    cuda::Epilogue e;
  };
  const int64_t m = 4096;
  const P products[] = {{"qkv x3", 768, 768, 3, cuda::Epilogue::Bias},
                        {"attn-out", 768, 768, 1, cuda::Epilogue::Bias},
                        {"ffn-in +gelu", 3072, 768, 1, cuda::Epilogue::BiasGelu},
                        {"ffn-out", 768, 3072, 1, cuda::Epilogue::Bias}};
  for (bool tune : {false, true}) {
    cuda::CublasLtGemm lt(tune);
    const std::string how = tune ? " tuned" : " heuristic";
    for (const P& p : products) {
      const std::string shape = std::to_string(m) + "x" + std::to_string(p.n) + "x" +
                                std::to_string(p.k) + (p.batch > 1 ? " x3" : "");
      const double flops = 2.0 * m * p.n * p.k * p.batch;
      auto a = buffer(DType::F16, {m, p.k}, 1.0f);
      auto b = buffer(DType::F16, {p.batch, p.n, p.k}, 0.05f);
      auto bias = buffer(DType::F16, {p.batch, p.n}, 0.1f);
      auto c = cuda::DeviceBuffer::allocate(DType::F16, {p.batch, m, p.n}, pool, s);
      const double ms16 = time_ms(s, [&] {
        lt.run(cuda::GemmPrecision::F16, {m, p.n, p.k, true, p.batch}, a.data(), b.data(), c.data(),
               s, bias.data(), p.e);
      });
      rows.push_back(
          {std::string("bert ") + p.name + " f16" + how, shape, ms16, flops / ms16 / 1e9, 0});
      auto a8 = buffer(DType::F8E4M3FN, {m, p.k}, 200.0f);
      auto b8 = buffer(DType::F8E4M3FN, {p.batch, p.n, p.k}, 200.0f);
      auto scale = buffer(DType::F32, {1}, 0.01f);
      cuda::Fp8GemmArgs args = fp8_args(m, p.n, p.k, a8, b8, scale, scale, c, DType::F16);
      args.bias = bias.data();
      args.epilogue = p.e;
      args.batch = p.batch;
      for (bool fast : {false, true}) {
        args.fast_accum = fast;
        const double ms8 = time_ms(s, [&] { lt.run_fp8(args, s); });
        rows.push_back({std::string("bert ") + p.name + (fast ? " fp8 fast" : " fp8") + how, shape,
                        ms8, flops / ms8 / 1e9, 0});
      }
    }
  }
  for (int64_t k : {768, 3072}) {
    auto x = buffer(DType::F16, {m, k}, 4.0f);
    auto q = cuda::DeviceBuffer::allocate(DType::F8E4M3FN, {m, k}, pool, s);
    auto scale = buffer(DType::F32, {1}, 0.01f);
    const double ms = time_ms(s, [&] {
      cuda::quantize_e4m3(DType::F16, x.data(), m * k, scale.data_as<float>(), q.data(), s);
    });
    rows.push_back({"quantize f16 -> e4m3", std::to_string(m) + "x" + std::to_string(k), ms, 0,
                    3.0 * m * k / ms / 1e6});
  }
}

int main(int argc, char** argv) try {
  std::string json;
  bool quick = false;
  bool attention_only = false;  // --attention: the attention rows alone
  bool bert_products = false;   // --bert-products: BERT-base's products in f16 and FP8 alone
  std::vector<int> tiles;       // --tiles: attention kernels (default: all the device runs)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--attention") {
      attention_only = true;
    } else if (a == "--bert-products") {
      bert_products = true;
    } else if (a == "--tiles" && i + 1 < argc) {
      // Attention kernels to time (AttentionArgs::tile), comma-separated.
      tiles.clear();
      for (const char* c = argv[++i]; *c != '\0';) {
        char* end = nullptr;
        tiles.push_back(static_cast<int>(std::strtol(c, &end, 10)));
        if (end == c) {
          std::fprintf(stderr, "--tiles: a comma-separated list of ints\n");
          return 2;
        }
        c = *end == ',' ? end + 1 : end;
      }
    } else {
      std::fprintf(stderr,
                   "usage: kpt_gpu_bench [--json FILE] [--quick] [--attention] [--bert-products] "
                   "[--tiles N,N,...]\n");
      return 2;
    }
  }
  const auto& dev = cuda::current_device();
  std::printf("device: %s, sm_%d%d, %d SMs\n", dev.name.c_str(), dev.major, dev.minor,
              dev.multiprocessors);
  cuda::Stream stream;
  const cudaStream_t s = stream.get();
  auto& pool = cuda::DevicePool::for_current_device();
  std::vector<Row> rows;
  auto buffer = [&](DType dt, Dims dims, float range) {
    auto b = cuda::DeviceBuffer::allocate(dt, std::move(dims), pool, s);
    fill_random(b, range, s);
    return b;
  };

  // Attention: the shapes (bf16, seq 4096, head dim 128, causal and not), head dim 64,
  // BERT-base's; every kernel the device runs (tile: see AttentionArgs).
  auto bench_attention = [&] {
    struct A {
      DType dt;
      int64_t b, h, seq, d;
    };
    std::vector<A> att = {{DType::BF16, 2, 16, 4096, 128}, {DType::BF16, 4, 32, 4096, 128},
                          {DType::BF16, 4, 32, 4096, 64},  {DType::F16, 4, 32, 4096, 128},
                          {DType::F16, 32, 12, 128, 64},  // BERT-base, batch 32, seq 128
                          {DType::F16, 1, 12, 512, 64}};  // GPT-2 prefill, batch 1, seq 512
    if (quick) att.resize(1);
    if (tiles.empty()) {
      tiles = {2, 3};
      if (dev.major == 9 && dev.minor == 0)
        tiles.insert(tiles.end(), {cuda::kTileWgmma, cuda::kTileWgmmaPingpong, cuda::kTileWgmma64,
                                   cuda::kTileWgmmaPersistent, cuda::kTileWgmma64Persistent});
    }
    for (const A& c : att) {
      auto q = buffer(c.dt, {c.b, c.h, c.seq, c.d}, 1.0f);
      auto k = buffer(c.dt, {c.b, c.h, c.seq, c.d}, 1.0f);
      auto v = buffer(c.dt, {c.b, c.h, c.seq, c.d}, 1.0f);
      auto o = cuda::DeviceBuffer::allocate(c.dt, {c.b, c.h, c.seq, c.d}, pool, s);
      for (bool causal : {false, true})
        for (int tile : tiles) {
          cuda::AttentionArgs a;
          a.dtype = c.dt;
          a.batch = c.b;
          a.heads = c.h;
          a.seq_q = a.seq_kv = c.seq;
          a.head_dim = c.d;
          a.q = q.data();
          a.k = k.data();
          a.v = v.data();
          a.o = o.data();
          a.causal = causal;
          a.tile = tile;
          const double ms = time_ms(s, [&] { cuda::flash_attention(a, s); });
          const std::string shape = "B" + std::to_string(c.b) + " H" + std::to_string(c.h) + " S" +
                                    std::to_string(c.seq) + " D" + std::to_string(c.d);
          const char* kernel = tile == 0                              ? " [default]"
                               : tile == 2                            ? " [kv64]"
                               : tile == 3                            ? " [kv32]"
                               : tile == cuda::kTileWgmma             ? " [wgmma]"
                               : tile == cuda::kTileWgmma64           ? " [wgmma 64 rows]"
                               : tile == cuda::kTileWgmmaPersistent   ? " [wgmma persistent]"
                               : tile == cuda::kTileWgmma64Persistent ? " [wgmma 64 persistent]"
                                                                      : " [wgmma pingpong]";
          rows.push_back({std::string("attention ") + std::string(dtype_name(c.dt)) +
                              (causal ? " causal" : "") + kernel,
                          shape, ms, cuda::attention_flops(a) / ms / 1e9, 0});
        }
    }
  };
  if (bert_products) {
    bench_bert_products(rows, s, pool, buffer);
    print(rows);
    if (!json.empty()) write_json(rows, json, dev.name);
    return 0;
  }
  if (attention_only) {
    bench_attention();
    print(rows);
    if (!json.empty()) write_json(rows, json, dev.name);
    return 0;
  }

  // Memory ceiling: a device-to-device copy (bytes read + written).
  {
    const int64_t n = int64_t{1} << 30;
    auto src = buffer(DType::U8, {n}, 1.0f), dst = buffer(DType::U8, {n}, 1.0f);
    const double ms = time_ms(s, [&] {
      KPT_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), n, cudaMemcpyDeviceToDevice, s));
    });
    rows.push_back({"copy d2d", "1 GiB", ms, 0, 2.0 * n / ms / 1e6});
  }

  // GEMMs at 8192^3 (and BERT-base's FFN shape).
  cuda::CublasLtGemm lt;
  const int64_t big = quick ? 4096 : 8192;
  struct G {
    cuda::GemmPrecision p;
    DType dt;
  };
  for (const G& g :
       {G{cuda::GemmPrecision::BF16, DType::BF16}, G{cuda::GemmPrecision::F16, DType::F16},
        G{cuda::GemmPrecision::TF32, DType::F32}}) {
    const int64_t m = big, n = big, k = big;
    auto a = buffer(g.dt, {m, k}, 1.0f), b = buffer(g.dt, {n, k}, 1.0f);
    auto c = cuda::DeviceBuffer::allocate(g.dt, {m, n}, pool, s);
    const double ms = time_ms(s, [&] {
      lt.run(g.p, {m, n, k, true}, a.data(), b.data(), c.data(), s);
    });
    const std::string shape = std::to_string(m) + "^3";
    rows.push_back({"gemm " + cuda::to_string(g.p), shape, ms, 2.0 * m * n * k / ms / 1e9, 0});
  }
  {
    // BERT-base FFN-in at batch 32, seq 128, with the fused bias+GELU epilogue.
    const int64_t m = 4096, n = 3072, k = 768;
    auto a = buffer(DType::F16, {m, k}, 1.0f), b = buffer(DType::F16, {n, k}, 0.05f);
    auto bias = buffer(DType::F16, {n}, 0.1f);
    auto c = cuda::DeviceBuffer::allocate(DType::F16, {m, n}, pool, s);
    const double ms = time_ms(s, [&] {
      lt.run(cuda::GemmPrecision::F16, {m, n, k, true}, a.data(), b.data(), c.data(), s,
             bias.data(), cuda::Epilogue::BiasGelu);
    });
    rows.push_back({"gemm f16 bias+gelu", "4096x3072x768", ms, 2.0 * m * n * k / ms / 1e9, 0});
  }
  for (bool fast : {false, true}) {
    const int64_t m = big, n = big, k = big;
    auto a = buffer(DType::F8E4M3FN, {m, k}, 200.0f), b = buffer(DType::F8E4M3FN, {n, k}, 200.0f);
    auto c = cuda::DeviceBuffer::allocate(DType::BF16, {m, n}, pool, s);
    auto scale_a = buffer(DType::F32, {1}, 0.01f), scale_b = buffer(DType::F32, {1}, 0.01f);
    cuda::Fp8GemmArgs args = fp8_args(m, n, k, a, b, scale_a, scale_b, c, DType::BF16);
    args.fast_accum = fast;
    const double ms = time_ms(s, [&] { lt.run_fp8(args, s); });
    rows.push_back({fast ? "gemm fp8 e4m3 (fast accum)" : "gemm fp8 e4m3", std::to_string(m) + "^3",
                    ms, 2.0 * m * n * k / ms / 1e9, 0});
  }

  bench_bert_products(rows, s, pool, buffer);
  bench_attention();

  // LayerNorm at BERT-base batch 32 x seq 128 (memory-bound: bytes read + written).
  {
    const int64_t rows_n = 4096, cols = 768;
    auto x = buffer(DType::F16, {rows_n, cols}, 2.0f), gmm = buffer(DType::F16, {cols}, 1.0f);
    auto bt = buffer(DType::F16, {cols}, 1.0f);
    auto y = cuda::DeviceBuffer::allocate(DType::F16, {rows_n, cols}, pool, s);
    cuda::NormArgs a;
    a.dtype = DType::F16;
    a.rows = rows_n;
    a.cols = cols;
    a.x = x.data();
    a.gamma = gmm.data();
    a.beta = bt.data();
    a.y = y.data();
    const double ms = time_ms(s, [&] { cuda::layer_norm(a, s); });
    rows.push_back({"layernorm f16", "4096x768", ms, 0, 2.0 * x.nbytes() / ms / 1e6});
  }

  // A BERT-base-shaped chain of our kernels, 12 layers, f16, seq 128: per layer the QKV
  // projection, attention, output projection, skip-LayerNorm, FFN (bias+GELU fused) and
  // skip-LayerNorm. Not a model run: no embeddings, masks or head transposes (the executor comes
  // next), so it bounds what the model can reach. Timed as eager launches and as one CUDA graph.
  for (int64_t batch : {int64_t{1}, int64_t{32}}) {
    const int64_t tok = batch * 128, hid = 768, heads = 12, ffn = 3072;
    auto x = buffer(DType::F16, {tok, hid}, 1.0f);
    auto wqkv = buffer(DType::F16, {3 * hid, hid}, 0.05f),
         bqkv = buffer(DType::F16, {3 * hid}, 0.1f);
    auto wo = buffer(DType::F16, {hid, hid}, 0.05f), bo = buffer(DType::F16, {hid}, 0.1f);
    auto w1 = buffer(DType::F16, {ffn, hid}, 0.05f), b1 = buffer(DType::F16, {ffn}, 0.1f);
    auto w2 = buffer(DType::F16, {hid, ffn}, 0.05f), b2 = buffer(DType::F16, {hid}, 0.1f);
    auto gm = buffer(DType::F16, {hid}, 1.0f), bt = buffer(DType::F16, {hid}, 0.1f);
    auto qkv = buffer(DType::F16, {tok, 3 * hid}, 1.0f);
    auto q = buffer(DType::F16, {batch, heads, 128, 64}, 1.0f);
    auto k = buffer(DType::F16, {batch, heads, 128, 64}, 1.0f);
    auto v = buffer(DType::F16, {batch, heads, 128, 64}, 1.0f);
    auto att = buffer(DType::F16, {tok, hid}, 1.0f), proj = buffer(DType::F16, {tok, hid}, 1.0f);
    auto x1 = buffer(DType::F16, {tok, hid}, 1.0f), h1 = buffer(DType::F16, {tok, ffn}, 1.0f);
    auto h2 = buffer(DType::F16, {tok, hid}, 1.0f);
    auto forward = [&](cudaStream_t st) {
      for (int layer = 0; layer < 12; ++layer) {
        lt.run(cuda::GemmPrecision::F16, {tok, 3 * hid, hid, true}, x.data(), wqkv.data(),
               qkv.data(), st, bqkv.data(), cuda::Epilogue::Bias);
        cuda::AttentionArgs a;
        a.dtype = DType::F16;
        a.batch = batch;
        a.heads = heads;
        a.seq_q = a.seq_kv = 128;
        a.head_dim = 64;
        a.q = q.data();
        a.k = k.data();
        a.v = v.data();
        a.o = att.data();
        cuda::flash_attention(a, st);
        lt.run(cuda::GemmPrecision::F16, {tok, hid, hid, true}, att.data(), wo.data(), proj.data(),
               st, bo.data(), cuda::Epilogue::Bias);
        cuda::NormArgs n;
        n.dtype = DType::F16;
        n.rows = tok;
        n.cols = hid;
        n.x = proj.data();
        n.skip = x.data();
        n.gamma = gm.data();
        n.beta = bt.data();
        n.y = x1.data();
        n.epsilon = 1e-12f;
        cuda::skip_layer_norm(n, st);
        lt.run(cuda::GemmPrecision::F16, {tok, ffn, hid, true}, x1.data(), w1.data(), h1.data(), st,
               b1.data(), cuda::Epilogue::BiasGelu);
        lt.run(cuda::GemmPrecision::F16, {tok, hid, ffn, true}, h1.data(), w2.data(), h2.data(), st,
               b2.data(), cuda::Epilogue::Bias);
        n.x = h2.data();
        n.skip = x1.data();
        n.y = x.data();
        cuda::skip_layer_norm(n, st);
      }
    };
    const std::string shape = "batch " + std::to_string(batch) + ", seq 128";
    const double eager = time_ms(s, [&] { forward(s); });
    cuda::CapturedGraph graph;
    graph.capture(s, forward);
    const double replay = time_ms(s, [&] { graph.replay(s); });
    const double flops = 12.0 * (2.0 * tok * hid * (3 * hid + hid + 2 * ffn) +
                                 4.0 * batch * heads * 128.0 * 128.0 * 64.0);
    rows.push_back({"bert-base-shaped chain, eager", shape, eager, flops / eager / 1e9,
                    batch * 1000.0 / eager});
    rows.push_back({"bert-base-shaped chain, graph", shape, replay, flops / replay / 1e9,
                    batch * 1000.0 / replay});
  }

  print(rows);
  if (!json.empty()) write_json(rows, json, dev.name);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kpt_gpu_bench: %s\n", e.what());
  return 1;
}
