#include "tools/kpt/ort_compare.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/npy.hpp"
#include "kpt/error.hpp"

namespace kpt::cli {

namespace fs = std::filesystem;

namespace {

const char* kInstallHint =
    "install it with scripts/install-deps.sh (Debian's nodejs and npm's onnxruntime-node 1.30 "
    "into tools/ort/node_modules), or point KPT_ORT_DIR at a folder holding bench_ort.js and "
    "node_modules/onnxruntime-node";

// `node` on PATH, or "" when there is none.
std::string find_node() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    fs::path candidate = fs::path(dir) / "node";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

bool is_peer_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "bench_ort.js", ec) &&
         fs::exists(dir / "node_modules" / "onnxruntime-node" / "package.json", ec);
}

// A temporary folder removed (with its files) when this goes out of scope.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kpt-bench-XXXXXX").string();
    check(::mkdtemp(pattern.data()) != nullptr,
          "cannot make a temporary folder from " + pattern + " for the ONNX Runtime run");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Runs argv[0] with arguments, without a shell (paths may hold any character); returns its
// exit status, or 128 + signal when a signal ended it.
int run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  check(pid >= 0, "cannot start " + args[0] + " (fork failed)");
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    check(errno == EINTR, "waiting for " + args[0] + " failed");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace

std::string find_ort_peer() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("KPT_ORT_DIR")) candidates.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // build/kpt -> tools/ort; build/tests/x -> tools/ort as well.
    candidates.push_back(exe.parent_path().parent_path() / "tools" / "ort");
    candidates.push_back(exe.parent_path().parent_path().parent_path() / "tools" / "ort");
  }
  candidates.emplace_back(fs::path("tools") / "ort");
  check(!find_node().empty(), std::string("--compare ort needs node on PATH; ") + kInstallHint);
  for (const auto& c : candidates) {
    if (is_peer_dir(c)) return fs::absolute(c).string();
  }
  std::string looked;
  for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c.string();
  fail("--compare ort needs tools/ort/bench_ort.js and node_modules/onnxruntime-node; looked in " +
       looked + "; " + kInstallHint);
}

OrtRun run_ort(const std::string& peer_dir, const std::string& model,
               const std::map<std::string, Tensor>& inputs, int threads, int warmup,
               int iterations) {
  check(threads >= 1, "ONNX Runtime needs at least 1 thread, got " + std::to_string(threads));
  TempDir dir;
  nlohmann::json manifest = nlohmann::json::object();
  int k = 0;
  for (const auto& [name, t] : inputs) {
    // Files are numbered: input names may hold '/' or ':'.
    const std::string file = "input_" + std::to_string(k++) + ".npy";
    write_npy((dir.path / file).string(), t);
    manifest[name] = file;
  }
  std::ofstream(dir.path / "inputs.json") << manifest.dump();
  const std::string node = find_node();
  check(!node.empty(), std::string("--compare ort needs node on PATH; ") + kInstallHint);
  const int status =
      run_process({node, (fs::path(peer_dir) / "bench_ort.js").string(),
                   fs::absolute(model).string(), dir.path.string(), std::to_string(threads),
                   std::to_string(warmup), std::to_string(iterations)});
  check(status == 0, "ONNX Runtime's run of " + model + " failed (node exited with status " +
                         std::to_string(status) + "); its message is above");
  std::ifstream in(dir.path / "ort_result.json");
  check(in.good(), "ONNX Runtime's run wrote no ort_result.json in " + dir.path.string());
  nlohmann::json j = nlohmann::json::parse(in);
  OrtRun r;
  r.version = j.at("version").get<std::string>();
  r.load_ms = j.at("load_ms").get<double>();
  r.total_ms = j.at("total_ms").get<double>();
  r.latencies_ms = j.at("latencies_ms").get<std::vector<double>>();
  const auto names = j.at("outputs").get<std::vector<std::string>>();
  for (size_t i = 0; i < names.size(); ++i) {
    r.outputs[names[i]] =
        read_npy((dir.path / ("ort_output_" + std::to_string(i) + ".npy")).string());
  }
  return r;
}

}  // namespace kpt::cli
