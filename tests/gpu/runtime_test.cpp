// Device runtime: the stream-ordered pool, pinned staging and DeviceBuffer round trips.
#include <cstring>
#include <iostream>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

class SeedPrinter : public ::testing::Environment {
 public:
  void SetUp() override {
    const auto& s = cuda::runtime_status();
    std::cout << "KPT_GPU_SEED=" << seed() << "\n";
    for (const auto& d : s.devices)
      std::cout << "device " << d.index << ": " << d.name << ", sm_" << d.major << d.minor << ", "
                << d.multiprocessors << " SMs, " << (d.total_memory >> 20) << " MiB\n";
    if (!s.usable) std::cout << "no usable CUDA device: " << s.problem << "\n";
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SeedPrinter);

TEST(CudaRuntime, DeviceIsUsable) {
  const auto& s = cuda::runtime_status();
  ASSERT_TRUE(s.usable) << s.problem;
  EXPECT_GE(s.devices.at(0).major, 8) << "the kernels are built for sm_80 and sm_90a";
}

TEST(CudaRuntime, UploadDownloadRoundTrip) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::U8}) {
    Tensor t =
        dt == DType::I64 || dt == DType::U8 ? Tensor(dt, {3, 1001}) : random_tensor(dt, {3, 1001});
    if (dt == DType::I64)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = (i * 7919) ^ 0x5a5a;
    if (dt == DType::U8)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(i * 31);
    const auto b = gpu().upload(t);
    EXPECT_EQ(b.dims(), t.dims());
    const Tensor back = gpu().download(b);
    ASSERT_EQ(back.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0) << dtype_name(dt);
  }
}

TEST(CudaRuntime, PoolReusesFreedMemoryStreamOrdered) {
  auto& g = gpu();
  g.stream.synchronize();
  const size_t before = g.pool.used_bytes();
  {
    auto a = cuda::DeviceBuffer::allocate(DType::F32, {1 << 20}, g.pool, g.stream.get());
    EXPECT_GE(g.pool.used_bytes(), before + (size_t{4} << 20));
  }
  g.stream.synchronize();
  EXPECT_EQ(g.pool.used_bytes(), before);
  const size_t reserved = g.pool.reserved_bytes();
  // A same-sized allocation after the free comes from the pool, not the driver.
  {
    auto b = cuda::DeviceBuffer::allocate(DType::F32, {1 << 20}, g.pool, g.stream.get());
    EXPECT_EQ(g.pool.reserved_bytes(), reserved);
  }
  g.stream.synchronize();
}

TEST(CudaRuntime, WrappedBufferIsNotCopiedOrFreed) {
  auto& g = gpu();
  const Tensor t = random_tensor(DType::F32, {257});
  auto owned = g.upload(t);
  {
    // I/O binding: a view of memory someone else owns reads the same bytes.
    const auto view = cuda::DeviceBuffer::wrap(DType::F32, {257}, owned.data());
    EXPECT_EQ(view.data(), owned.data());
    const Tensor back = g.download(view);
    EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0);
  }
  const Tensor again = g.download(owned);  // still valid after the view is gone
  EXPECT_EQ(std::memcmp(again.raw(), t.raw(), t.nbytes()), 0);
}

}  // namespace
}  // namespace kpt::gpu_test
