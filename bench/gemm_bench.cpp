// BERT-base GEMM shapes: GFLOP/s of oneDNN's matmul primitive alone (weights prepacked, the
// source already in the GEMM's input type, static scales) against our kernel run through
// ops::Kernel as the executor runs it (source conversion or quantization, output allocation,
// plan lookup), at fp32, bf16 and int8. Also the accuracy of bf16/int8 against fp32.
//
//   kpt_gemm_bench [--threads N] [--iterations N] [--clock wall|cpu]
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/parallel.hpp"
#include "ops/run_node.hpp"

namespace {

using namespace kpt;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Timing {
  double median_s, best_s;
};

using Runner = std::function<void()>;

// Wall time, or the process's CPU time: on a machine shared with other jobs, CPU time of a
// single-threaded run counts only the work done, not the time spent waiting for a core.
bool use_cpu_clock = false;
double now_s() {
  timespec ts{};
  clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Times the runners alternately, so that both see the same load on a shared machine.
std::vector<Timing> time_alternately(const std::vector<Runner>& runners, int iterations) {
  for (int i = 0; i < 3; ++i)
    for (const auto& r : runners) r();  // warm up: plans, caches, pages
  std::vector<std::vector<double>> t(runners.size());
  for (int i = 0; i < iterations; ++i) {
    for (size_t j = 0; j < runners.size(); ++j) {
      const double start = now_s();
      runners[j]();
      t[j].push_back(now_s() - start);
    }
  }
  std::vector<Timing> out;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    out.push_back({v[v.size() / 2], v.front()});
  }
  return out;
}

// The raw primitive: C[M,N] = A[M,K] x W[K,N], A given in the primitive's source type.
Runner raw_onednn(const std::string& precision, int64_t m, int64_t k, int64_t n,
                  const std::vector<float>& a, const std::vector<float>& w) {
  auto& eng = cpu::dnnl_util::engine();
  auto& s = cpu::dnnl_util::stream();
  const dt src_dt = precision == "fp32" ? dt::f32 : precision == "bf16" ? dt::bf16 : dt::u8;
  const dt wei_dt = precision == "fp32" ? dt::f32 : precision == "bf16" ? dt::bf16 : dt::s8;
  const dnnl::memory::desc src_md({m, k}, src_dt, tag::ab);
  const dnnl::memory::desc dst_md({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (precision == "int8") attr.set_output_scales(1 << 1, std::vector<float>(n, 1e-3f));
  const dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(src_md, dnnl::memory::desc({k, n}, wei_dt, tag::any), dst_md), attr, eng);
  // Inputs converted beforehand: the raw rate excludes any conversion.
  dnnl::memory a_f32({{m, k}, dt::f32, tag::ab}, eng, const_cast<float*>(a.data()));
  dnnl::memory w_f32({{k, n}, dt::f32, tag::ab}, eng, const_cast<float*>(w.data()));
  dnnl::memory src(src_md, eng), wei(pd.weights_desc(), eng), dst(dst_md, eng);
  dnnl::reorder(a_f32, src).execute(s, a_f32, src);
  dnnl::reorder(w_f32, wei).execute(s, w_f32, wei);
  s.wait();
  dnnl::matmul prim(pd);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  return [prim, args] {
    auto& st = cpu::dnnl_util::stream();
    prim.execute(st, args);
    st.wait();
  };
}

// Our kernel prepared as a session prepares it and run as the executor runs it; each run
// leaves its output in *out.
Runner ours(Precision precision, int64_t m, int64_t k, int64_t n, const std::vector<float>& a,
            const std::vector<float>& w, Tensor* out) {
  auto node = std::make_shared<ir::Node>();
  node->op_type = "MatMul";
  node->opset = 20;
  node->name = "bench";
  node->inputs = {"a", "w"};
  node->outputs = {"y"};
  Tensor ta = Tensor::uninitialized(DType::F32, {m, k});
  std::memcpy(ta.data<float>(), a.data(), a.size() * 4);
  Tensor tw = Tensor::uninitialized(DType::F32, {k, n});
  std::memcpy(tw.data<float>(), w.data(), w.size() * 4);
  const ir::Type a_type =
      ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::sym("M"), ir::Dim::of(k)});
  const ir::Type w_type = ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::of(k), ir::Dim::of(n)});
  cpu::PrepareContext ctx{*node, {&a_type, &w_type}, {nullptr, &tw}, {}, precision};
  auto kernel = cpu::KernelRegistry::instance().prepare(ctx);
  if (!kernel) fail("no fast kernel for MatMul");
  std::shared_ptr<ops::Kernel> shared(std::move(kernel));
  return [node, shared, va = Value::of(ta), vw = Value::of(tw), out] {
    *out = ops::run_node(*node, {&va, &vw}, nullptr, shared.get())[0].tensor;
  };
}

void compare(const Tensor& got, const Tensor& want, double& cos, double& rel) {
  double ab = 0, aa = 0, bb = 0, diff = 0, mag = 1e-30;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double x = got.data<float>()[i], y = want.data<float>()[i];
    ab += x * y;
    aa += x * x;
    bb += y * y;
    diff = std::max(diff, std::fabs(x - y));
    mag = std::max(mag, std::fabs(y));
  }
  cos = ab / std::sqrt(aa * bb);
  rel = diff / mag;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, iterations = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") {
      threads = std::stoi(argv[i + 1]);
    } else if (flag == "--clock") {
      use_cpu_clock = std::string(argv[i + 1]) == "cpu";
    } else if (flag == "--iterations") {
      iterations = std::max(1, std::stoi(argv[i + 1]));
    } else {
      std::fprintf(stderr,
                   "unknown flag '%s'; expected --threads N, --iterations N or --clock wall|cpu\n",
                   argv[i]);
      return 2;
    }
  }
  cpu::set_num_threads(threads);
  // CPU time adds up every thread's: GFLOP/s are then per core-second, not per second.
  std::printf("%s time, ", use_cpu_clock ? "process CPU" : "wall");
  std::printf(
      "threads %d, %d timed runs each, alternating (median, best in brackets; ratio and totals "
      "from the best)\n",
      omp_get_max_threads(), iterations);
  std::printf("%-5s %5s %5s %5s  %16s  %16s  %6s  %s\n", "prec", "M", "K", "N", "oneDNN GFLOP/s",
              "ours GFLOP/s", "ratio", "accuracy vs fp32");
  const std::vector<std::pair<int64_t, int64_t>> kn = {
      {768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
  std::mt19937 gen(12345);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const std::string prec : {"fp32", "bf16", "int8"}) {
    double raw_total = 0, ours_total = 0, flops_total = 0;
    for (int64_t m : {128, 1024}) {
      for (const auto& [k, n] : kn) {
        std::vector<float> a(static_cast<size_t>(m * k)), w(static_cast<size_t>(k * n));
        for (auto& v : a) v = normal(gen);
        for (auto& v : w) v = normal(gen) * 0.05f;
        const double flops = 2.0 * double(m) * double(k) * double(n);
        Tensor got, want;
        const auto t = time_alternately(
            {raw_onednn(prec, m, k, n, a, w), ours(parse_precision(prec), m, k, n, a, w, &got)},
            iterations);
        const Timing raw = t[0], o = t[1];
        std::string accuracy = "-";
        if (prec != "fp32") {
          ours(Precision::FP32, m, k, n, a, w, &want)();
          double cos = 0, rel = 0;
          compare(got, want, cos, rel);
          char buf[96];
          std::snprintf(buf, sizeof buf, "cos %.6f, max err %.1e of max", cos, rel);
          accuracy = buf;
        }
        raw_total += raw.best_s;
        ours_total += o.best_s;
        flops_total += flops;
        std::printf("%-5s %5ld %5ld %5ld  %7.1f [%6.1f]  %7.1f [%6.1f]  %5.0f%%  %s\n",
                    prec.c_str(), static_cast<long>(m), static_cast<long>(k), static_cast<long>(n),
                    flops / raw.median_s * 1e-9, flops / raw.best_s * 1e-9,
                    flops / o.median_s * 1e-9, flops / o.best_s * 1e-9,
                    100.0 * raw.best_s / o.best_s, accuracy.c_str());
      }
    }
    std::printf("%-5s all shapes: oneDNN %.1f GFLOP/s, ours %.1f GFLOP/s, ratio %.0f%%\n\n",
                prec.c_str(), flops_total / raw_total * 1e-9, flops_total / ours_total * 1e-9,
                100.0 * raw_total / ours_total);
  }
  return 0;
}
