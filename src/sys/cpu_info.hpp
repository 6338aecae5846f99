#pragma once
// Facts about the host CPU that decide which kernels can run: vendor, ISA extensions (as the
// CPU reports them and as the OS lets programs use them), cores and caches.
#include <cstdint>
#include <string>
#include <vector>

namespace kpt::sys {

// One ISA extension. `in_cpu` is what CPUID says; `usable` also requires the OS to save the
// extension's registers on context switch (XCR0 bits), and for AMX that Linux granted this
// process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM).
struct IsaFeature {
  std::string name;
  bool in_cpu = false;
  bool usable = false;
};

struct CacheLevel {
  int level = 0;
  std::string type;  // "Data", "Instruction" or "Unified"
  int64_t size_bytes = 0;
  int shared_by_cpus = 0;  // logical CPUs sharing one instance (0 when unknown)
};

struct CpuInfo {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ... (empty off x86)
  std::string brand;   // "AMD EPYC 9654 96-Core Processor"
  int family = 0, model = 0, stepping = 0;
  std::vector<IsaFeature> features;
  int logical_cores = 0;   // online logical CPUs
  int physical_cores = 0;  // distinct (package, core) pairs
  int packages = 0;
  std::vector<CacheLevel> caches;  // of cpu0, as the kernel lists them

  const IsaFeature* feature(const std::string& name) const;
  bool usable(const std::string& name) const;
  // Size of the cache of `level` that holds data (Data or Unified), 0 when not listed.
  int64_t data_cache_bytes(int level) const;
};

// Reads CPUID, XGETBV and /sys (or /proc/cpuinfo). Never fails: unknown facts stay empty/0.
CpuInfo query_cpu();

}  // namespace kpt::sys
