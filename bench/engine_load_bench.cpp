// Load-to-first-result: the time from nothing to the first outputs of a model, and the resident
// memory after load and after the first run. Run once per process (a second load in the same
// process would find oneDNN's caches warm), once on the ONNX file and once on its engine file.
//
//   kpt_engine_load_bench MODEL [--input NAME=DIMS]... [--threads N] [--no-verify]
// Prints one JSON object: load_ms (import+optimize+prepare, or map+verify+prepare),
// first_run_ms, total_ms, rss_after_load_mb, rss_after_first_run_mb, packed_reused,
// packed_fresh.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "runtime/random_inputs.hpp"

namespace {

using namespace kpt;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    check(argc >= 2,
          "usage: kpt_engine_load_bench MODEL [--input NAME=DIMS]... [--threads N] [--no-verify]");
    const std::string model = argv[1];
    std::map<std::string, Dims> shapes;
    SessionOptions options;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--input" && i + 1 < argc) {
        const std::string spec = argv[++i];
        const auto eq = spec.find('=');
        check(eq != std::string::npos, "--input '" + spec + "': expected NAME=DIMS");
        shapes[spec.substr(0, eq)] = runtime::parse_dims(spec.substr(eq + 1));
      } else if (a == "--threads" && i + 1 < argc) {
        options.threads = std::stoi(argv[++i]);
      } else if (a == "--no-verify") {
        options.verify_engine = false;
      } else {
        fail("unknown argument '" + a + "'; expected --input NAME=DIMS, --threads N, --no-verify");
      }
    }
    const double rss_before = rss_mb();
    const auto t0 = Clock::now();
    Session session = Session::open(model, options);
    const double load_ms = ms_since(t0);
    const double rss_load = rss_mb();
    // Inputs are made outside the timed span: they are the caller's, not the load's.
    const auto inputs = runtime::make_valid_inputs(session.graph(), session.inputs(), shapes, {});
    const auto t1 = Clock::now();
    const auto outputs = session.run_tensors(inputs);
    const double run_ms = ms_since(t1);
    const LoadInfo info = session.load_info();
    const nlohmann::json j = {{"model", model},
                              {"engine", info.from_engine},
                              {"verify", options.verify_engine},
                              {"load_ms", load_ms},
                              {"first_run_ms", run_ms},
                              {"total_ms", load_ms + run_ms},
                              {"rss_before_mb", rss_before},
                              {"rss_after_load_mb", rss_load},
                              {"rss_after_first_run_mb", rss_mb()},
                              {"packed_reused", info.packed_reused},
                              {"packed_fresh", info.packed_fresh},
                              {"outputs", outputs.size()}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kpt_engine_load_bench: %s\n", e.what());
    return 1;
  }
}
