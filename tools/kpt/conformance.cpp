// kpt conformance DIR: runs ONNX backend test cases, each isolated in its own process.
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "conformance/runner.hpp"
#include "kpt/error.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

struct Args {
  std::string dir;
  std::string json;
  std::string expect;
  std::string write_expected;
  double rtol = 1e-3, atol = 1e-7;
  conformance::Options opts;
  bool verbose = false;
};

std::set<std::string> read_list(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "cannot read the expected-pass list '" + path + "'");
  std::set<std::string> s;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') s.insert(line);
  }
  return s;
}

int run(const Args& a, CLI::App& cmd) {
  conformance::Options o = a.opts;
  o.rtol = a.rtol;
  o.atol = a.atol;
  o.tolerance_overridden = cmd.count("--rtol") || cmd.count("--atol");
  auto cases = conformance::find_cases(a.dir);
  if (!o.filter.empty()) {
    std::erase_if(cases, [&](const conformance::CaseDir& c) {
      return (c.folder + "/" + c.name).find(o.filter) == std::string::npos;
    });
  }
  check(!cases.empty(), "no conformance cases (folders with model.onnx) below '" + a.dir + "'");
  std::vector<conformance::CaseResult> results(cases.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex io;
  auto worker = [&] {
    for (size_t i; (i = next++) < cases.size();) {
      results[i] = conformance::run_case_isolated(cases[i], o);
      size_t d = ++done;
      std::lock_guard lock(io);
      if (a.verbose) {
        std::cerr << results[i].status << "  " << cases[i].folder << "/" << cases[i].name
                  << (results[i].reason.empty() ? "" : "  " + results[i].reason.substr(0, 300))
                  << "\n";
      } else if (d % 100 == 0 || d == cases.size()) {
        std::cerr << "\r" << d << "/" << cases.size() << " cases" << std::flush;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int j = 0; j < std::max(1, o.jobs); ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (!a.verbose) std::cerr << "\n";

  std::map<std::string, std::map<std::string, int>> table;
  for (const auto& r : results) table[r.folder][r.status]++;
  std::cout << "folder                 passed   failed  unsupported   total   pass%\n";
  for (const auto& [folder, counts] : table) {
    int p = counts.count("passed") ? counts.at("passed") : 0;
    int f = counts.count("failed") ? counts.at("failed") : 0;
    int u = counts.count("unsupported") ? counts.at("unsupported") : 0;
    int t = p + f + u;
    char line[160];
    std::snprintf(line, sizeof line, "%-20s %8d %8d %12d %7d %6.1f%%\n", folder.c_str(), p, f, u, t,
                  t ? 100.0 * p / t : 0.0);
    std::cout << line;
  }
  if (!a.json.empty()) {
    nlohmann::json j;
    j["cases"] = nlohmann::json::array();
    for (const auto& r : results) {
      j["cases"].push_back({{"folder", r.folder},
                            {"name", r.name},
                            {"status", r.status},
                            {"reason", r.reason},
                            {"seconds", r.seconds}});
    }
    std::ofstream(a.json) << j.dump(1) << "\n";
  }
  if (!a.write_expected.empty()) {
    std::ofstream out(a.write_expected);
    out << "# Conformance cases expected to pass (folder/name); regenerate with\n"
           "# kpt conformance ../shared/onnx-conformance --write-expected FILE\n";
    for (const auto& r : results) {
      if (r.status == "passed") out << r.folder << "/" << r.name << "\n";
    }
  }
  if (!a.expect.empty()) {
    auto expected = read_list(a.expect);
    int regressions = 0;
    for (const auto& r : results) {
      if (expected.count(r.folder + "/" + r.name) && r.status != "passed") {
        std::cerr << "REGRESSION " << r.folder << "/" << r.name << ": " << r.status << ": "
                  << r.reason.substr(0, 400) << "\n";
        ++regressions;
      }
    }
    if (regressions) {
      std::cerr << regressions << " case(s) expected to pass did not\n";
      return 1;
    }
    std::cerr << "all " << expected.size() << " expected cases passed\n";
  }
  return 0;
}

}  // namespace

void add_conformance(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("conformance", "Run ONNX backend conformance cases below DIR");
  cmd->add_option("dir", a->dir, "Folder laid out as the ONNX backend test data")->required();
  cmd->add_option("--json", a->json, "Write per-case results as JSON");
  cmd->add_option("--rtol", a->rtol, "Relative tolerance for float outputs (default 1e-3)");
  cmd->add_option("--atol", a->atol, "Absolute tolerance for float outputs (default 1e-7)");
  cmd->add_option("--filter", a->opts.filter, "Only cases whose folder/name contains this");
  cmd->add_option("--timeout", a->opts.timeout_s, "Seconds a case may run (default 60)");
  cmd->add_option("-j,--jobs", a->opts.jobs, "Cases run at once (default 1)");
  cmd->add_option("--expect", a->expect, "Fail when a case listed in this file does not pass");
  cmd->add_option("--write-expected", a->write_expected, "Write the passing cases to this file");
  cmd->add_flag("-v,--verbose", a->verbose, "Print every case's result");
  cmd->add_option("--target", a->opts.target,
                  "cpu (default) or cuda[:N]: on a GPU, the cases the CUDA backend claims (no "
                  "node falls back to the CPU) run there; the rest count as unsupported");
  cmd->add_option("--precision", a->opts.precision,
                  "fp32 (default); fp16 or bf16 with --target cuda (loosen --rtol/--atol)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  cmd->callback([a, cmd] {
    int rc = run(*a, *cmd);
    if (rc) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kpt::cli
