#include "sys/cpu_info.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#define KPT_X86 1
#endif

namespace kpt::sys {

const IsaFeature* CpuInfo::feature(const std::string& name) const {
  for (const auto& f : features) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool CpuInfo::usable(const std::string& name) const {
  const IsaFeature* f = feature(name);
  return f && f->usable;
}

int64_t CpuInfo::data_cache_bytes(int level) const {
  for (const auto& c : caches) {
    if (c.level == level && c.type != "Instruction") return c.size_bytes;
  }
  return 0;
}

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) return "";
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Parses a kernel CPU list ("0-3,8,10-11") into CPU numbers.
std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    auto dash = part.find('-');
    try {
      int lo = std::stoi(part.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    } catch (const std::exception&) {
      return {};
    }
  }
  return cpus;
}

// "48K", "2048K", "32M" as the kernel writes cache sizes.
int64_t parse_size(const std::string& text) {
  if (text.empty()) return 0;
  int64_t n = 0;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') n = n * 10 + (text[i++] - '0');
  if (i < text.size()) {
    switch (text[i]) {
      case 'K':
        return n << 10;
      case 'M':
        return n << 20;
      case 'G':
        return n << 30;
      default:
        break;
    }
  }
  return n;
}

#ifdef KPT_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf = 0) {
  Regs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d)) return Regs{};
  return r;
}

uint64_t xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned reg, int n) {
  return (reg >> n) & 1u;
}

// Linux keeps AMX tile data off until a process asks for it; without this request the first
// tile instruction faults. Granting is per process and idempotent.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

void read_cpuid(CpuInfo& info) {
  Regs r0 = cpuid(0);
  const unsigned max_leaf = r0.a;
  char vendor[13] = {};
  std::memcpy(vendor, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  info.vendor = vendor;

  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned k = 0; k < 3; ++k) {
      Regs r = cpuid(0x80000002 + k);
      std::memcpy(brand + 16 * k, &r.a, 4);
      std::memcpy(brand + 16 * k + 4, &r.b, 4);
      std::memcpy(brand + 16 * k + 8, &r.c, 4);
      std::memcpy(brand + 16 * k + 12, &r.d, 4);
    }
    std::string b = brand;
    b.erase(0, b.find_first_not_of(' '));
    while (!b.empty() && b.back() == ' ') b.pop_back();
    info.brand = b;
  }

  Regs r1 = max_leaf >= 1 ? cpuid(1) : Regs{};
  const unsigned base_family = (r1.a >> 8) & 0xF, base_model = (r1.a >> 4) & 0xF;
  info.family =
      static_cast<int>(base_family == 0xF ? base_family + ((r1.a >> 20) & 0xFF) : base_family);
  info.model = static_cast<int>((base_family == 0x6 || base_family == 0xF)
                                    ? base_model + (((r1.a >> 16) & 0xF) << 4)
                                    : base_model);
  info.stepping = static_cast<int>(r1.a & 0xF);

  Regs r7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
  Regs r71 = (max_leaf >= 7 && r7.a >= 1) ? cpuid(7, 1) : Regs{};

  // The OS enables register state in XCR0 only when it saves that state on context switch.
  const bool osxsave = bit(r1.c, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_sse = osxsave ? (xcr0 & 0x2) != 0 : true;  // SSE state is always saved on x86-64
  const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM and YMM
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;            // plus opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx_xcr0 = (xcr0 & 0x60000) == 0x60000;    // XTILECFG and XTILEDATA

  const bool amx_in_cpu = bit(r7.d, 24);
  const bool os_amx = amx_in_cpu && os_amx_xcr0 && request_amx_permission();

  auto add = [&](const char* name, bool in_cpu, bool os_ok) {
    info.features.push_back({name, in_cpu, in_cpu && os_ok});
  };
  add("SSE4.2", bit(r1.c, 20), os_sse);
  add("AVX", bit(r1.c, 28), os_avx);
  add("F16C", bit(r1.c, 29), os_avx);
  add("FMA", bit(r1.c, 12), os_avx);
  add("AVX2", bit(r7.b, 5), os_avx);
  add("AVX-VNNI", bit(r71.a, 4), os_avx);
  add("AVX512F", bit(r7.b, 16), os_avx512);
  add("AVX512BW", bit(r7.b, 30), os_avx512);
  add("AVX512VL", bit(r7.b, 31), os_avx512);
  add("AVX512DQ", bit(r7.b, 17), os_avx512);
  add("AVX512-VNNI", bit(r7.c, 11), os_avx512);
  add("AVX512-BF16", bit(r71.a, 5), os_avx512);
  add("AVX512-FP16", bit(r7.d, 23), os_avx512);
  add("AMX-TILE", amx_in_cpu, os_amx);
  add("AMX-BF16", bit(r7.d, 22), os_amx);
  add("AMX-INT8", bit(r7.d, 25), os_amx);
}
#endif

void read_topology(CpuInfo& info) {
  namespace fs = std::filesystem;
  const fs::path root = "/sys/devices/system/cpu";
  std::vector<int> online = parse_cpu_list(read_text(root / "online"));
  std::set<std::pair<std::string, std::string>> cores;
  std::set<std::string> packages;
  for (int c : online) {
    fs::path topo = root / ("cpu" + std::to_string(c)) / "topology";
    std::string pkg = read_text(topo / "physical_package_id");
    std::string core = read_text(topo / "core_id");
    if (pkg.empty() || core.empty()) continue;
    cores.insert({pkg, core});
    packages.insert(pkg);
  }
  if (cores.empty()) {
    // No sysfs topology (some containers): /proc/cpuinfo names package and core per CPU.
    std::ifstream in("/proc/cpuinfo");
    std::string line, pkg = "0";
    int processors = 0;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
      std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
      if (key == "processor") ++processors;
      if (key == "physical id") pkg = value;
      if (key == "core id") {
        cores.insert({pkg, value});
        packages.insert(pkg);
      }
    }
    if (online.empty()) online.resize(static_cast<size_t>(processors));
  }
  info.logical_cores = static_cast<int>(online.size());
  if (info.logical_cores == 0) {
    info.logical_cores = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  }
  info.physical_cores = cores.empty() ? info.logical_cores : static_cast<int>(cores.size());
  info.packages = packages.empty() ? 1 : static_cast<int>(packages.size());
}

void read_caches(CpuInfo& info) {
  namespace fs = std::filesystem;
  const fs::path dir = "/sys/devices/system/cpu/cpu0/cache";
  std::error_code ec;
  std::vector<fs::path> indexes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("index", 0) == 0) indexes.push_back(e.path());
  }
  std::sort(indexes.begin(), indexes.end());
  for (const auto& p : indexes) {
    CacheLevel c;
    std::string level = read_text(p / "level");
    if (level.empty()) continue;
    c.level = std::atoi(level.c_str());
    c.type = read_text(p / "type");
    c.size_bytes = parse_size(read_text(p / "size"));
    c.shared_by_cpus = static_cast<int>(parse_cpu_list(read_text(p / "shared_cpu_list")).size());
    info.caches.push_back(c);
  }
}

}  // namespace

CpuInfo query_cpu() {
  CpuInfo info;
#ifdef KPT_X86
  read_cpuid(info);
#endif
  read_topology(info);
  read_caches(info);
  return info;
}

}  // namespace kpt::sys
