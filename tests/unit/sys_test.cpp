#include <gtest/gtest.h>

#include "sys/cpu_info.hpp"
#include "sys/gpu_info.hpp"
#include "sys/memory_info.hpp"

namespace kpt::sys {
namespace {

TEST(CpuInfo, CoresAreConsistent) {
  CpuInfo cpu = query_cpu();
  EXPECT_GE(cpu.logical_cores, 1);
  EXPECT_GE(cpu.physical_cores, 1);
  EXPECT_LE(cpu.physical_cores, cpu.logical_cores);
  EXPECT_GE(cpu.packages, 1);
}

TEST(CpuInfo, UsableFeaturesAreInTheCpu) {
  CpuInfo cpu = query_cpu();
  for (const auto& f : cpu.features) {
    if (f.usable) {
      EXPECT_TRUE(f.in_cpu) << f.name;
    }
  }
#if defined(__x86_64__)
  EXPECT_FALSE(cpu.vendor.empty());
  ASSERT_NE(cpu.feature("AVX2"), nullptr);
  // x86-64 implies SSE2 and every CPU that runs this build has SSE4.2 or reports it absent;
  // AVX-512 subsets need the foundation.
  if (cpu.usable("AVX512BW")) {
    EXPECT_TRUE(cpu.usable("AVX512F"));
  }
  if (cpu.usable("AVX2")) {
    EXPECT_TRUE(cpu.usable("AVX"));
  }
  if (cpu.usable("AMX-BF16")) {
    EXPECT_TRUE(cpu.usable("AMX-TILE"));
  }
#endif
}

TEST(CpuInfo, CachesGrowWithLevel) {
  CpuInfo cpu = query_cpu();
  for (const auto& c : cpu.caches) {
    EXPECT_GE(c.level, 1);
    EXPECT_GT(c.size_bytes, 0);
  }
  const int64_t l1 = cpu.data_cache_bytes(1), l2 = cpu.data_cache_bytes(2);
  if (l1 > 0 && l2 > 0) {
    EXPECT_LE(l1, l2);
  }
}

TEST(MemoryInfo, TotalCoversAvailable) {
  MemoryInfo m = query_memory();
  EXPECT_GT(m.total_bytes, 0);
  EXPECT_GT(m.available_bytes, 0);
  EXPECT_LE(m.available_bytes, m.total_bytes);
}

TEST(GpuInfo, ReportsDevicesOrWhyNot) {
  GpuInfo g = query_gpus();
  if (!g.driver_found) {
    EXPECT_TRUE(g.devices.empty());
    EXPECT_FALSE(g.problem.empty());
  }
  for (const auto& d : g.devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.total_memory_bytes, 0);
    EXPECT_GE(d.compute_major, 1);
  }
  EXPECT_EQ(cuda_version_string(12040), "12.4");
}

}  // namespace
}  // namespace kpt::sys
