// kpt doctor: what this machine and this build offer (CPU features, cores, caches, memory,
// NVIDIA GPUs, backends, registered ops), as text or --json.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/backends.hpp"
#include "ops/registry.hpp"
#include "sys/cpu_info.hpp"
#include "sys/gpu_info.hpp"
#include "sys/memory_info.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Facts {
  sys::CpuInfo cpu;
  sys::MemoryInfo memory;
  sys::GpuInfo gpu;
  std::vector<backends::BackendStatus> backends;
  size_t ops_with_kernels = 0;
  size_t ops_with_inference = 0;
};

Facts gather() {
  Facts f;
  f.cpu = sys::query_cpu();
  f.memory = sys::query_memory();
  f.gpu = sys::query_gpus();
  f.backends = backends::backend_statuses();
  const auto& registry = ops::Registry::instance();
  std::set<std::pair<std::string, std::string>> kernels;
  for (const auto& e : registry.entries()) {
    if (e.kernel) kernels.insert({e.domain, e.op_type});
  }
  f.ops_with_kernels = kernels.size();
  f.ops_with_inference = registry.ops_with_inference().size();
  return f;
}

std::string human_bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf,
                u == 0 || v >= 100 || v == static_cast<int64_t>(v) ? "%.0f %s" : "%.1f %s", v,
                units[u]);
  return buf;
}

std::string cache_name(const sys::CacheLevel& c) {
  std::string n = "L" + std::to_string(c.level);
  if (c.type == "Data") n += "d";
  if (c.type == "Instruction") n += "i";
  return n;
}

nlohmann::json to_json(const Facts& f) {
  nlohmann::json j;
  auto& cpu = j["cpu"];
  cpu["vendor"] = f.cpu.vendor;
  cpu["brand"] = f.cpu.brand;
  cpu["family"] = f.cpu.family;
  cpu["model"] = f.cpu.model;
  cpu["stepping"] = f.cpu.stepping;
  cpu["logical_cores"] = f.cpu.logical_cores;
  cpu["physical_cores"] = f.cpu.physical_cores;
  cpu["packages"] = f.cpu.packages;
  cpu["features"] = nlohmann::json::object();
  for (const auto& feat : f.cpu.features) {
    cpu["features"][feat.name] = {{"cpu", feat.in_cpu}, {"usable", feat.usable}};
  }
  cpu["caches"] = nlohmann::json::array();
  for (const auto& c : f.cpu.caches) {
    cpu["caches"].push_back({{"name", cache_name(c)},
                             {"level", c.level},
                             {"type", c.type},
                             {"size_bytes", c.size_bytes},
                             {"shared_by_cpus", c.shared_by_cpus}});
  }
  j["memory"] = {{"total_bytes", f.memory.total_bytes},
                 {"available_bytes", f.memory.available_bytes}};
  auto& gpu = j["nvidia"];
  gpu["driver_found"] = f.gpu.driver_found;
  gpu["problem"] = f.gpu.problem;
  gpu["driver_cuda_version"] =
      f.gpu.driver_found ? sys::cuda_version_string(f.gpu.driver_version) : "";
  gpu["devices"] = nlohmann::json::array();
  for (const auto& d : f.gpu.devices) {
    gpu["devices"].push_back({{"index", d.index},
                              {"name", d.name},
                              {"total_memory_bytes", d.total_memory_bytes},
                              {"compute_capability", std::to_string(d.compute_major) + "." +
                                                         std::to_string(d.compute_minor)},
                              {"multiprocessors", d.multiprocessors}});
  }
  j["backends"] = nlohmann::json::array();
  for (const auto& b : f.backends)
    j["backends"].push_back(
        {{"name", b.name}, {"compiled", b.compiled}, {"can_run", b.can_run}, {"detail", b.detail}});
  j["ops"] = {{"with_kernels", f.ops_with_kernels}, {"with_shape_inference", f.ops_with_inference}};
  return j;
}

void print_text(const Facts& f) {
  std::cout << "cpu       " << (f.cpu.brand.empty() ? "(unknown)" : f.cpu.brand);
  if (!f.cpu.vendor.empty()) {
    std::cout << " [" << f.cpu.vendor << ", family " << f.cpu.family << " model " << f.cpu.model
              << " stepping " << f.cpu.stepping << "]";
  }
  std::cout << "\ncores     " << f.cpu.logical_cores << " logical, " << f.cpu.physical_cores
            << " physical, " << f.cpu.packages << " package(s)\n";
  std::cout << "caches   ";
  if (f.cpu.caches.empty()) std::cout << " (not listed by the kernel)";
  for (const auto& c : f.cpu.caches) {
    std::cout << " " << cache_name(c) << " " << human_bytes(c.size_bytes);
    if (c.shared_by_cpus > 1) std::cout << " (shared by " << c.shared_by_cpus << " cpus)";
    std::cout << ";";
  }
  std::cout << "\nmemory    " << human_bytes(f.memory.total_bytes) << " total, "
            << human_bytes(f.memory.available_bytes) << " available\n";
  std::cout << "isa       feature        in cpu  usable\n";
  for (const auto& feat : f.cpu.features) {
    char line[96];
    std::snprintf(line, sizeof line, "          %-14s %-7s %s\n", feat.name.c_str(),
                  feat.in_cpu ? "yes" : "no", feat.usable ? "yes" : "no");
    std::cout << line;
  }
  if (!f.gpu.driver_found || f.gpu.devices.empty()) {
    std::cout << "gpu       " << (f.gpu.problem.empty() ? "no NVIDIA GPU found" : f.gpu.problem)
              << "\n";
  } else {
    std::cout << "gpu       NVIDIA driver supports CUDA "
              << sys::cuda_version_string(f.gpu.driver_version) << ", " << f.gpu.devices.size()
              << " device(s)\n";
    for (const auto& d : f.gpu.devices) {
      std::cout << "          [" << d.index << "] " << d.name << ", "
                << human_bytes(d.total_memory_bytes) << ", compute capability " << d.compute_major
                << "." << d.compute_minor << ", " << d.multiprocessors << " SMs\n";
    }
  }
  for (size_t i = 0; i < f.backends.size(); ++i) {
    const auto& b = f.backends[i];
    std::cout << (i == 0 ? "backends  " : "          ") << b.name << ": "
              << (!b.compiled ? "not in this build" : (b.can_run ? "runs here" : "built in"))
              << " (" << b.detail << ")\n";
  }
  std::cout << "ops       " << f.ops_with_kernels << " ops with kernels, " << f.ops_with_inference
            << " with shape inference\n";
}

}  // namespace

void add_doctor(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd =
      app.add_subcommand("doctor", "Show CPU/GPU capabilities and what this build contains");
  cmd->add_flag("--json", *json, "Print the facts as JSON");
  cmd->callback([json] {
    Facts f = gather();
    if (*json) {
      std::cout << to_json(f).dump(2) << "\n";
    } else {
      print_text(f);
    }
  });
}

}  // namespace kpt::cli
