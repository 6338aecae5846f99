// A whole model with the fast kernels at a chosen precision against the same model on the
// reference kernels: which kernel runs each node (the session's kernel histogram), run time,
// and how far the outputs move from the reference's.
//
//   kpt_session_bench MODEL [--input NAME=DIMS]... [--precision fp32|bf16|int8]
//                     [--iterations N] [--threads N] [--skip-reference] [--against-fp32]
// --against-fp32 compares with the fast kernels at fp32 instead of the (slow) reference ones.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "runtime/random_inputs.hpp"

namespace {

using namespace kpt;

std::map<std::string, Value> make_inputs(const Session& s,
                                         const std::map<std::string, Dims>& shapes) {
  std::map<std::string, int64_t> symbols;
  for (const auto& info : s.inputs()) {
    auto it = shapes.find(info.name);
    if (it == shapes.end()) continue;
    check(it->second.size() == info.symbols.size() || !info.has_shape,
          "--input " + info.name + ": rank differs from the model's " +
              std::to_string(info.dims.size()));
    for (size_t d = 0; d < info.symbols.size() && d < it->second.size(); ++d)
      if (!info.symbols[d].empty()) symbols[info.symbols[d]] = it->second[d];
  }
  std::map<std::string, Value> in;
  uint64_t seed = 1;
  for (const auto& info : s.inputs())
    in[info.name] = Value::of(runtime::random_input(info, symbols, seed++));
  return in;
}

struct Timed {
  std::vector<Value> outputs;
  double median_ms, best_ms;
  double median_cpu_ms;  // process CPU time (all threads): robust on a shared machine
};

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
}

Timed time_runs(const Session& s, const std::map<std::string, Value>& in, int iterations) {
  Timed t;
  t.outputs = s.run(in);  // warm-up: plans, scratch, pages
  std::vector<double> ms, cpu;
  for (int i = 0; i < iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_ms();
    s.run(in);
    cpu.push_back(cpu_ms() - cpu_start);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  t.median_cpu_ms = cpu[cpu.size() / 2];
  t.median_ms = ms[ms.size() / 2];
  t.best_ms = ms.front();
  return t;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: kpt_session_bench MODEL [--input NAME=DIMS]... [--precision P] "
                 "[--iterations N] [--threads N] [--skip-reference] [--against-fp32]\n");
    return 2;
  }
  const std::string model = argv[1];
  std::map<std::string, Dims> shapes;
  SessionOptions fast;
  int iterations = 5;
  bool with_reference = true;
  bool against_fp32 = false;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--skip-reference") {
      with_reference = false;
      continue;
    }
    if (flag == "--against-fp32") {
      against_fp32 = true;
      continue;
    }
    check(i + 1 < argc, flag + ": expected a value after it");
    const std::string value = argv[++i];
    if (flag == "--input") {
      const auto eq = value.find('=');
      check(eq != std::string::npos, "--input '" + value + "': expected NAME=DIMS");
      shapes[value.substr(0, eq)] = runtime::parse_dims(value.substr(eq + 1));
    } else if (flag == "--precision") {
      fast.precision = parse_precision(value);
    } else if (flag == "--iterations") {
      iterations = std::max(1, std::stoi(value));
    } else if (flag == "--threads") {
      fast.threads = std::stoi(value);
    } else {
      fail("unknown flag '" + flag +
           "'; expected --input, --precision, --iterations, --threads, --skip-reference or "
           "--against-fp32");
    }
  }
  SessionOptions reference = fast;
  reference.fast_kernels = against_fp32;
  reference.precision = Precision::FP32;
  const Session s = Session::open(model, fast);
  std::printf("kernels (precision %s):\n", precision_name(fast.precision));
  for (const auto& [name, count] : s.kernel_histogram())
    if (name.rfind("reference:", 0) != 0 || name.find("MatMul") != std::string::npos ||
        name.find("Gemm") != std::string::npos)
      std::printf("  %5d  %s\n", count, name.c_str());
  const auto in = make_inputs(s, shapes);
  const Timed f = time_runs(s, in, iterations);
  std::printf("%-17s median %9.1f ms  best %9.1f ms  CPU %9.1f ms  (%d runs)\n", "fast kernels",
              f.median_ms, f.best_ms, f.median_cpu_ms, iterations);
  if (!with_reference) return 0;
  const Session r = Session::open(model, reference);
  const Timed ref = time_runs(r, in, iterations);
  std::printf("%-17s median %9.1f ms  best %9.1f ms  CPU %9.1f ms  (%d runs)\n",
              against_fp32 ? "fast fp32 kernels" : "reference kernels", ref.median_ms, ref.best_ms,
              ref.median_cpu_ms, iterations);
  std::printf("speed-up: %.1fx in wall time (median), %.1fx in CPU time\n",
              ref.median_ms / f.median_ms, ref.median_cpu_ms / f.median_cpu_ms);
  for (size_t o = 0; o < f.outputs.size(); ++o) {
    if (!f.outputs[o].is_tensor() || f.outputs[o].tensor.dtype() != DType::F32) continue;
    const Tensor& a = f.outputs[o].tensor;
    const Tensor& b = ref.outputs[o].tensor;
    double ab = 0, aa = 0, bb = 0, diff = 0, mag = 1e-30;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = a.data<float>()[i], y = b.data<float>()[i];
      ab += x * y;
      aa += x * x;
      bb += y * y;
      diff = std::max(diff, std::fabs(x - y));
      mag = std::max(mag, std::fabs(y));
    }
    std::printf("output %s: max |fast - baseline| %.3g (%.2g of max |baseline|), cosine %.6f\n",
                s.outputs()[o].name.c_str(), diff, diff / mag, ab / std::sqrt(aa * bb + 1e-300));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
