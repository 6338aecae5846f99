#include "tests/gpu/gpu_test_util.hpp"

#include <execinfo.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <random>

#include "backends/cuda/cuda_check.hpp"
#include "core/cast.hpp"
#include "ops/run_node.hpp"

namespace kpt::gpu_test {

uint64_t seed() {
  static const uint64_t s = []() -> uint64_t {
    if (const char* env = std::getenv("KPT_GPU_SEED")) return std::strtoull(env, nullptr, 10);
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return s;
}

namespace {

// The GPU machines have no debugger: a crash prints its stack (offsets into the binary, which
// addr2line resolves against the unstripped build) before the default action.
void print_stack_and_die(int sig) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  const char msg[] = "\n*** fatal signal in the GPU tests; stack:\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
const bool kStackOnCrash = [] {
  std::signal(SIGSEGV, print_stack_and_die);
  std::signal(SIGABRT, print_stack_and_die);
  return true;
}();

std::mt19937_64& rng() {
  static std::mt19937_64 r(seed());
  return r;
}
}  // namespace

Tensor random_tensor(DType dtype, const Dims& dims, float lo, float hi) {
  Tensor f(DType::F32, dims);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < f.numel(); ++i) f.data<float>()[i] = dist(rng());
  return dtype == DType::F32 ? f : cast_tensor(f, dtype);
}

Tensor to_f32(const Tensor& t) {
  return t.dtype() == DType::F32 ? t : cast_tensor(t, DType::F32);
}

cuda::DeviceBuffer Gpu::upload(const Tensor& t) {
  return cuda::DeviceBuffer::upload(t, pool, staging, stream.get());
}

cuda::DeviceBuffer Gpu::poisoned(DType dtype, const Dims& dims) {
  auto b = cuda::DeviceBuffer::allocate(dtype, dims, pool, stream.get());
  KPT_CUDA_CHECK(cudaMemsetAsync(b.data(), 0xFF, b.nbytes(), stream.get()));
  return b;
}

Tensor Gpu::download(const cuda::DeviceBuffer& b) {
  KPT_CUDA_CHECK(cudaGetLastError());
  return b.download(staging, stream.get());
}

Gpu& gpu() {
  static Gpu g;
  return g;
}

std::vector<Tensor> reference(const std::string& op, int opset, const std::vector<Tensor>& inputs,
                              size_t num_outputs,
                              const std::map<std::string, ir::Attribute>& attrs) {
  ir::Node node;
  node.name = "ref";
  node.op_type = op;
  node.opset = opset;
  node.attrs = attrs;
  std::vector<Value> values;
  values.reserve(inputs.size());
  std::vector<const Value*> ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    node.inputs.push_back(inputs[i].defined() ? "in" + std::to_string(i) : "");
    values.push_back(Value::of(inputs[i]));
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    ptrs.push_back(inputs[i].defined() ? &values[i] : nullptr);
  for (size_t i = 0; i < num_outputs; ++i) node.outputs.push_back("out" + std::to_string(i));
  std::vector<Value> out = ops::run_node(node, ptrs, nullptr);
  std::vector<Tensor> r;
  for (auto& v : out) r.push_back(v.tensor);
  return r;
}

ir::Attribute int_attr(const std::string& name, int64_t v) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::Int;
  a.i = v;
  return a;
}
ir::Attribute float_attr(const std::string& name, float v) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::Float;
  a.f = v;
  return a;
}
ir::Attribute string_attr(const std::string& name, const std::string& v) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::String;
  a.s = v;
  return a;
}

Diff compare(const Tensor& got, const Tensor& want) {
  const Tensor g = to_f32(got), w = to_f32(want);
  Diff d;
  if (g.numel() != w.numel()) {
    d.rel_l2 = INFINITY;
    return d;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double a = g.data<float>()[i], b = w.data<float>()[i];
    if (!std::isfinite(a)) {
      ++d.non_finite;
      continue;
    }
    num += (a - b) * (a - b);
    den += b * b;
    d.max_abs = std::max(d.max_abs, std::fabs(a - b));
  }
  d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return d;
}

void expect_close(const Tensor& got, const Tensor& want, double rel_l2_tol,
                  const std::string& what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  const Diff d = compare(got, want);
  std::cout << "  " << what << ": rel_l2 " << d.rel_l2 << " max_abs " << d.max_abs << " (tolerance "
            << rel_l2_tol << ")\n";
  EXPECT_EQ(d.non_finite, 0) << what << ": elements not finite (unwritten or overflow)";
  EXPECT_LE(d.rel_l2, rel_l2_tol) << what << " (seed " << seed() << ")";
}

}  // namespace kpt::gpu_test
