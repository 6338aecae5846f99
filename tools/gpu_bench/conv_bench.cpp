// kpt_gpu_conv_bench: ResNet-50's convolutions (torchvision's v1.5 layout, 224x224 input) one
// shape at a time through cuda::conv2d, at one batch size, by each method (auto, direct, aligned
// copy); also im2col alone. Median of
// CUDA-event-timed launches. The last line sums each way over the network's 53 convolutions
// (shape time x count).
//
// usage: kpt_gpu_conv_bench [--batch N] [--dtype f16|bf16] [--reps N]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/cuda/conv2d.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/stream.hpp"
#include "tools/gpu_bench/event_timing.hpp"

namespace {

using namespace kpt;
using gpu_bench::time_ms;

struct Shape {
  int64_t cin, cout, k, stride, in;  // square input `in`, pad k / 2
  int count;                         // how many ResNet-50 has
  bool residual, relu;
};

const Shape kResNet50[] = {
    {3, 64, 7, 2, 224, 1, false, true},    {64, 64, 1, 1, 56, 1, false, true},
    {256, 64, 1, 1, 56, 2, false, true},   {64, 64, 3, 1, 56, 3, false, true},
    {64, 256, 1, 1, 56, 3, true, true},    {64, 256, 1, 1, 56, 1, false, false},
    {256, 128, 1, 1, 56, 1, false, true},  {128, 128, 3, 2, 56, 1, false, true},
    {128, 512, 1, 1, 28, 4, true, true},   {256, 512, 1, 2, 56, 1, false, false},
    {512, 128, 1, 1, 28, 3, false, true},  {128, 128, 3, 1, 28, 3, false, true},
    {512, 256, 1, 1, 28, 1, false, true},  {256, 256, 3, 2, 28, 1, false, true},
    {256, 1024, 1, 1, 14, 6, true, true},  {512, 1024, 1, 2, 28, 1, false, false},
    {1024, 256, 1, 1, 14, 5, false, true}, {256, 256, 3, 1, 14, 5, false, true},
    {1024, 512, 1, 1, 14, 1, false, true}, {512, 512, 3, 2, 14, 1, false, true},
    {512, 2048, 1, 1, 7, 3, true, true},   {1024, 2048, 1, 2, 14, 1, false, false},
    {2048, 512, 1, 1, 7, 2, false, true},  {512, 512, 3, 1, 7, 2, false, true},
};

class PoolAllocator final : public cuda::RunAllocator {
 public:
  explicit PoolAllocator(cudaStream_t s) : s_(s) {}
  cuda::DeviceBuffer allocate(DType dtype, Dims dims) override {
    return cuda::DeviceBuffer::allocate(dtype, std::move(dims),
                                        cuda::DevicePool::for_current_device(), s_);
  }

 private:
  cudaStream_t s_;
};

// Small values, so that no sum overflows f16; the timing does not depend on them.
cuda::DeviceBuffer filled(DType dt, Dims dims, cudaStream_t s) {
  auto b =
      cuda::DeviceBuffer::allocate(dt, std::move(dims), cuda::DevicePool::for_current_device(), s);
  KPT_CUDA_CHECK(cudaMemsetAsync(b.data(), 0x11, b.nbytes(), s));
  return b;
}

}  // namespace

int main(int argc, char** argv) try {
  int64_t batch = 32;
  int reps = 20;
  DType dt = DType::F16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batch") {
      batch = std::stoll(v);
    } else if (k == "--reps") {
      reps = std::stoi(v);
    } else if (k == "--dtype") {
      dt = v == "bf16" ? DType::BF16 : DType::F16;
    } else {
      std::fprintf(stderr, "usage: kpt_gpu_conv_bench [--batch N] [--dtype f16|bf16] [--reps N]\n");
      return 2;
    }
  }
  const auto& dev = cuda::current_device();
  std::printf("device: %s; ResNet-50 convolutions, batch %lld, %s\n", dev.name.c_str(),
              static_cast<long long>(batch), std::string(dtype_name(dt)).c_str());
  cuda::Stream stream;
  const cudaStream_t s = stream.get();
  cuda::CublasLtGemm gemm;
  PoolAllocator alloc(s);
  std::printf("%-34s %5s %9s %8s %9s %9s %9s\n", "conv (cin>cout kxk /s @in)", "count", "auto ms",
              "TFLOP/s", "direct", "aligned", "im2col");
  double total_fused = 0, total_direct = 0, total_copy = 0, total_flops = 0;
  for (const Shape& c : kResNet50) {
    cuda::Window2d w;
    w.channels = c.cin;
    w.in_h = w.in_w = c.in;
    w.kernel_h = w.kernel_w = c.k;
    w.stride_h = w.stride_w = c.stride;
    w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = c.k / 2;
    w.out_h = w.out_w = (c.in + 2 * (c.k / 2) - c.k) / c.stride + 1;
    const auto x = filled(dt, {batch, c.cin, c.in, c.in}, s);
    const auto wt = filled(dt, {c.cout, c.cin, c.k, c.k}, s);
    const auto bias = filled(dt, {c.cout}, s);
    const auto res = filled(dt, {batch, c.cout, w.out_h, w.out_w}, s);
    auto y = filled(dt, {batch, c.cout, w.out_h, w.out_w}, s);
    cuda::Conv2dArgs a;
    a.dtype = dt;
    a.images = batch;
    a.out_channels = c.cout;
    a.window = w;
    a.x = x.data();
    a.weight = wt.data();
    a.bias = bias.data();
    a.residual = c.residual ? res.data() : nullptr;
    a.y = y.data();
    a.relu = c.relu;
    auto ms_for = [&](cuda::ConvMethod method) {
      try {
        return time_ms(
            s, [&] { cuda::conv2d(gemm, alloc, a, s, method); }, 3, reps);
      } catch (const std::exception& e) {
        std::printf("  (%s: %s)\n", cuda::to_string(method).c_str(), e.what());
        return -1.0;
      }
    };
    const double fused = ms_for(cuda::ConvMethod::Auto);
    const double direct = ms_for(cuda::ConvMethod::Direct);
    const double copy = ms_for(cuda::ConvMethod::AlignedCopy);
    double im2col_ms = 0;
    if (!cuda::conv_reads_input_directly(w)) {
      auto col = filled(dt, {batch, c.cin * c.k * c.k, w.out_h * w.out_w}, s);
      im2col_ms = time_ms(
          s,
          [&] {
            cuda::im2col(dt, x.data(), col.data(), batch, w, w.out_h * w.out_w, c.cin * c.k * c.k,
                         s);
          },
          3, reps);
    }
    const double flops = 2.0 * batch * c.cout * w.out_h * w.out_w * c.cin * c.k * c.k;
    char name[64];
    std::snprintf(
        name, sizeof name, "%lld>%lld %lldx%lld /%lld @%lld%s", static_cast<long long>(c.cin),
        static_cast<long long>(c.cout), static_cast<long long>(c.k), static_cast<long long>(c.k),
        static_cast<long long>(c.stride), static_cast<long long>(c.in), c.residual ? " +res" : "");
    std::printf("%-34s %5d %9.4f %8.1f %9.4f %9.4f %9.4f\n", name, c.count, fused,
                flops / fused / 1e9, direct, copy, im2col_ms);
    total_fused += fused * c.count;
    total_direct += direct * c.count;
    total_copy += copy * c.count;
    total_flops += flops * c.count;
  }
  std::printf(
      "all 53 convolutions: %.3f ms auto (%.1f TFLOP/s), %.3f ms all direct, %.3f ms all "
      "by the aligned copy\n",
      total_fused, total_flops / total_fused / 1e9, total_direct, total_copy);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kpt_gpu_conv_bench: %s\n", e.what());
  return 1;
}
