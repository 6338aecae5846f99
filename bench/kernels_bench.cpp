// Microbenchmarks of the fast CPU kernels against the reference kernels, through the same path a
// session uses (ops::run_node with the prepared kernel): attention GFLOP/s, LayerNorm and
// Softmax GB/s next to a copy of the same bytes (the memory floor).
//
//   build/kpt_kernels_bench [--quick] [--attention-only]
//
// Times are medians of repeated runs (min in brackets); the machine may be shared, so compare
// numbers taken in one run.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/vec_math.hpp"
#include "ir/graph.hpp"
#include "ops/run_node.hpp"

namespace kpt {
namespace {

Tensor random_f32(const Dims& dims) {
  Tensor t = Tensor::uninitialized(DType::F32, dims);
  std::mt19937 g(42);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}

ir::Node make_node(const std::string& op, size_t inputs, int opset) {
  ir::Node n;
  n.op_type = op;
  n.opset = opset;
  for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  n.outputs.push_back("out");
  return n;
}

void set_int(ir::Node& n, const std::string& name, int64_t v) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::Int;
  a.i = v;
  n.attrs[name] = a;
}

struct Timing {
  double median = 0, min = 0;
};

// Runs fn `reps` times (after one warm-up) and returns median and min seconds.
template <class F>
Timing time_it(const F& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

// A callable that runs `node` on `inputs` with the fast kernel (or the reference one). Fast
// kernels write into outputs allocated once, as a session's memory plan provides them, so the
// timing holds the kernel and not the operating system's page faults.
struct NodeRunner {
  ir::Node node;
  std::vector<Value> values;
  std::unique_ptr<ops::Kernel> kernel;
  mutable std::vector<Tensor> arena;
  ops::KernelContext::OutputAllocator allocator;

  NodeRunner(ir::Node n, const std::vector<Tensor>& inputs, bool fast) : node(std::move(n)) {
    for (const auto& t : inputs) values.push_back(Value::of(t));
    arena.resize(node.outputs.size());
    allocator = [this](const ir::Node&, size_t i, DType dtype, const Dims& dims) {
      Tensor& t = arena[i];
      if (!t.defined() || t.dtype() != dtype || t.dims() != dims)
        t = Tensor::uninitialized(dtype, dims);
      return t;
    };
    if (fast) {
      cpu::PrepareContext pc{node,
                             std::vector<const ir::Type*>(inputs.size(), nullptr),
                             std::vector<const Tensor*>(inputs.size(), nullptr),
                             {nullptr}};
      kernel = cpu::KernelRegistry::instance().prepare(pc);
      if (!kernel) std::fprintf(stderr, "no fast kernel for %s\n", node.op_type.c_str());
    }
  }
  void operator()() const {
    std::vector<const Value*> ptrs;
    for (const auto& v : values) ptrs.push_back(&v);
    if (!kernel) {
      ops::run_node(node, ptrs, nullptr, nullptr);
      return;
    }
    std::vector<Value> out(node.outputs.size());
    ops::KernelContext ctx(node, ptrs, out, nullptr);
    ctx.set_output_allocator(&allocator);
    kernel->run(ctx);
  }
  std::string name() const { return kernel ? kernel->name() : "reference"; }
};

void bench_attention(int64_t B, int64_t H, int64_t S, int64_t D, bool causal, bool with_reference,
                     int reps) {
  ir::Node n = make_node("Attention", 3, 23);
  if (causal) set_int(n, "is_causal", 1);
  const std::vector<Tensor> in = {random_f32({B, H, S, D}), random_f32({B, H, S, D}),
                                  random_f32({B, H, S, D})};
  // QK^T and PV: 2 * 2 * B*H*S*S*D; causal counts only the pairs that are computed in
  // principle (i >= j), S(S+1)/2 of them.
  const double pairs = causal ? S * (S + 1) / 2.0 : static_cast<double>(S) * S;
  const double flops = 4.0 * B * H * pairs * D;
  const NodeRunner fast(n, in, true);
  const Timing t = time_it(fast, reps);
  std::printf("attention B=%ld H=%ld S=%ld D=%ld %-7s %-22s %9.3f ms (min %8.3f)  %6.1f GFLOP/s",
              static_cast<long>(B), static_cast<long>(H), static_cast<long>(S),
              static_cast<long>(D), causal ? "causal" : "full", fast.name().c_str(), t.median * 1e3,
              t.min * 1e3, flops / t.median * 1e-9);
  if (with_reference) {
    const NodeRunner ref(n, in, false);
    const Timing r = time_it(ref, 1);
    std::printf("  | reference %9.1f ms (%.0fx)", r.median * 1e3, r.median / t.median);
  }
  std::printf("\n");
}

// What the cores deliver right now: independent AVX-512 FMA chains on every thread (the
// machine may be shared, so kernel GFLOP/s are also shown as a fraction of this).
KPT_AVX512 double fma_gflops_avx512() {
  constexpr int64_t kIters = 20'000'000;
  const int threads = omp_get_max_threads();
  const auto a = std::chrono::steady_clock::now();
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    __m512 acc[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < kIters; ++it)
#pragma GCC unroll 12
      for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
#pragma GCC unroll 12
    for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    sink += _mm512_reduce_add_ps(acc[0]);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  if (sink == 12345.0f) std::printf(" ");  // keeps the loop
  return 2.0 * 16 * 12 * kIters * threads / s * 1e-9;
}

double fma_peak() {
  double best = 0;
  if (!cpu::vec::has_avx512()) return 0;
  for (int r = 0; r < 3; ++r) best = std::max(best, fma_gflops_avx512());
  return best;
}

// Copying the same bytes once: what a one-pass kernel cannot beat.
double copy_seconds(int64_t bytes, int reps) {
  std::vector<char> a(static_cast<size_t>(bytes), 1), b(static_cast<size_t>(bytes));
  const int threads = omp_get_max_threads();
  const Timing t = time_it(
      [&] {
#pragma omp parallel for num_threads(threads)
        for (int c = 0; c < threads; ++c) {
          const size_t lo = a.size() * c / threads, hi = a.size() * (c + 1) / threads;
          std::memcpy(b.data() + lo, a.data() + lo, hi - lo);
        }
      },
      reps);
  return t.median;
}

void bench_rowwise(const std::string& op, int64_t rows, int64_t cols, int reps) {
  ir::Node n = make_node(op, op == "LayerNormalization" ? 3 : 1, op == "Softmax" ? 13 : 17);
  std::vector<Tensor> in = {random_f32({rows, cols})};
  if (op == "LayerNormalization") {
    in.push_back(random_f32({cols}));
    in.push_back(random_f32({cols}));
  }
  const NodeRunner fast(n, in, true), ref(n, in, false);
  const Timing t = time_it(fast, reps);
  const Timing r = time_it(ref, 2);
  const double bytes = 2.0 * rows * cols * 4;  // read x, write y
  const double floor = copy_seconds(static_cast<int64_t>(bytes / 2), reps);
  std::printf(
      "%-18s [%ld,%ld] %-22s %8.3f ms (min %7.3f) %6.1f GB/s | copy of the same bytes %6.1f GB/s "
      "| reference %8.2f ms (%.0fx)\n",
      op.c_str(), static_cast<long>(rows), static_cast<long>(cols), fast.name().c_str(),
      t.median * 1e3, t.min * 1e3, bytes / t.median * 1e-9, bytes / floor * 1e-9, r.median * 1e3,
      r.median / t.median);
}

}  // namespace
}  // namespace kpt

int main(int argc, char** argv) {
  bool quick = false, attention_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--attention-only") {
      attention_only = true;
    } else {
      std::fprintf(stderr, "usage: kpt_kernels_bench [--quick] [--attention-only]\n");
      return 2;
    }
  }
  const int reps = quick ? 3 : 10;
  std::printf("threads: %d, AVX-512 FMA throughput now: %.0f GFLOP/s\n", omp_get_max_threads(),
              kpt::fma_peak());
  for (bool causal : {false, true}) {
    kpt::bench_attention(8, 12, 128, 64, causal, !attention_only, reps);
    kpt::bench_attention(1, 12, 1024, 64, causal, !quick && !attention_only, reps);
    kpt::bench_attention(1, 12, 4096, 64, causal, false, quick ? 1 : 3);
  }
  if (attention_only) return 0;
  kpt::bench_rowwise("LayerNormalization", 8 * 128, 768, reps * 10);
  kpt::bench_rowwise("LayerNormalization", 4096, 4096, reps);
  kpt::bench_rowwise("Softmax", 8 * 12 * 128, 128, reps * 10);
  return 0;
}
