#include "conformance/runner.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "onnx/import.hpp"
#include "runtime/device_executor.hpp"

namespace kpt::conformance {

namespace fs = std::filesystem;

std::vector<CaseDir> find_cases(const std::string& root) {
  std::vector<CaseDir> cases;
  std::error_code ec;
  check(fs::is_directory(root, ec), "'" + root + "' is not a folder of conformance cases");
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file() || it->path().filename() != "model.onnx") continue;
    fs::path dir = it->path().parent_path();
    fs::path parent = dir.parent_path();
    cases.push_back({parent.filename().string(), dir.filename().string(), dir.string()});
  }
  std::sort(cases.begin(), cases.end(), [](const CaseDir& a, const CaseDir& b) {
    return std::tie(a.folder, a.name) < std::tie(b.folder, b.name);
  });
  return cases;
}

namespace {

std::string compare_tensors(const Tensor& want, const Tensor& got, const Options& o,
                            const std::string& what) {
  if (want.dtype() != got.dtype()) {
    return what + ": element type " + std::string(dtype_name(got.dtype())) + ", expected " +
           std::string(dtype_name(want.dtype()));
  }
  if (want.dims() != got.dims()) {
    return what + ": shape " + dims_to_string(got.dims()) + ", expected " +
           dims_to_string(want.dims());
  }
  const int64_t n = want.numel();
  if (want.dtype() == DType::String) {
    for (int64_t i = 0; i < n; ++i) {
      if (want.strings()[static_cast<size_t>(i)] != got.strings()[static_cast<size_t>(i)]) {
        return what + ": element " + std::to_string(i) + " is '" +
               got.strings()[static_cast<size_t>(i)] + "', expected '" +
               want.strings()[static_cast<size_t>(i)] + "'";
      }
    }
    return "";
  }
  const bool fp = is_float(want.dtype());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    bool ok;
    if (fp) {
      double e = want.get_f64(i), a = got.get_f64(i);
      if (std::isnan(e) || std::isnan(a))
        ok = std::isnan(e) && std::isnan(a);
      else if (std::isinf(e) || std::isinf(a))
        ok = e == a;
      else
        ok = std::fabs(a - e) <= o.atol + o.rtol * std::fabs(e);
    } else {
      ok = want.dtype() == DType::U64 ? want.data<uint64_t>()[i] == got.data<uint64_t>()[i]
                                      : want.get_i64(i) == got.get_i64(i);
    }
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (!bad) return "";
  return what + ": " + std::to_string(bad) + " of " + std::to_string(n) +
         " elements differ; first at " + std::to_string(first) + ": got " +
         std::to_string(got.get_f64(first)) + ", expected " + std::to_string(want.get_f64(first));
}

std::string compare_values(const Value& want, const Value& got, const Options& o,
                           const std::string& what) {
  if (want.is_none() || got.is_none()) {
    return want.is_none() == got.is_none() ? "" : what + ": optional presence differs";
  }
  if (want.is_sequence()) {
    if (!got.is_sequence()) return what + ": expected a sequence";
    if (want.sequence.size() != got.sequence.size()) {
      return what + ": sequence of " + std::to_string(got.sequence.size()) + ", expected " +
             std::to_string(want.sequence.size());
    }
    for (size_t i = 0; i < want.sequence.size(); ++i) {
      auto r = compare_tensors(want.sequence[i], got.sequence[i], o,
                               what + "[" + std::to_string(i) + "]");
      if (!r.empty()) return r;
    }
    return "";
  }
  if (!got.is_tensor()) return what + ": expected a tensor";
  return compare_tensors(want.tensor, got.tensor, o, what);
}

}  // namespace

CaseResult run_case_inline(const CaseDir& c, const Options& o) {
  CaseResult r{c.folder, c.name, "passed", "", 0};
  try {
    const std::string model = (fs::path(c.path) / "model.onnx").string();
    SessionOptions so;
    so.target = o.target;
    so.precision = parse_precision(o.precision);
    if (o.target != "cpu") {
      // Whether the backend claims the case is decided from the plan, which needs no device:
      // the cases it does not claim cost no CUDA context.
      SessionOptions unoptimized;
      unoptimized.optimization = OptimizationLevel::None;
      unoptimized.fast_kernels = false;
      const ir::Graph planned =
          runtime::optimize_for_cuda(Session::open(model, unoptimized).graph(), so.optimization);
      const std::string plan = runtime::describe_cuda_plan(planned, so.precision);
      if (plan.find("cpu fallbacks 0") == std::string::npos) {
        const auto at = plan.find("cpu fallbacks");
        r.status = "unsupported";
        r.reason = "target " + o.target + " does not claim it: " +
                   (at == std::string::npos ? plan : plan.substr(at, plan.find('\n', at) - at));
        return r;
      }
    }
    Session s = Session::open(model, so);
    const ir::Graph& g = s.graph();
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(c.path)) {
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) {
        sets.push_back(e.path());
      }
    }
    std::sort(sets.begin(), sets.end());
    for (const auto& set : sets) {
      std::map<std::string, Value> inputs;
      // Inputs are fed in graph-input order; initializer-backed inputs only when a file exists.
      size_t k = 0;
      for (const auto& in : g.inputs) {
        fs::path f = set / ("input_" + std::to_string(k) + ".pb");
        if (!fs::exists(f)) break;
        inputs[in.name] = onnx_import::read_value_file(f.string(), in.type);
        ++k;
      }
      std::vector<Value> outputs = s.run(inputs);
      for (size_t i = 0; i < g.outputs.size(); ++i) {
        fs::path f = set / ("output_" + std::to_string(i) + ".pb");
        if (!fs::exists(f)) continue;
        Value want = onnx_import::read_value_file(f.string(), g.outputs[i].type);
        std::string diff = compare_values(
            want, outputs[i], o, set.filename().string() + " output '" + g.outputs[i].name + "'");
        if (!diff.empty()) {
          r.status = "failed";
          r.reason = diff;
          return r;
        }
      }
    }
  } catch (const Unsupported& e) {
    r.status = "unsupported";
    r.reason = e.what();
  } catch (const std::exception& e) {
    r.status = "failed";
    r.reason = e.what();
  }
  return r;
}

CaseResult run_case_isolated(const CaseDir& c, const Options& o) {
  auto start = std::chrono::steady_clock::now();
  int fds[2];
  check(pipe(fds) == 0, "cannot create a pipe");
  pid_t pid = fork();
  check(pid >= 0, "cannot fork");
  if (pid == 0) {
    close(fds[0]);
    CaseResult r = run_case_inline(c, o);
    std::string msg = r.status + "\n" + r.reason;
    size_t off = 0;
    while (off < msg.size()) {
      ssize_t w = write(fds[1], msg.data() + off, msg.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string buf;
  bool timed_out = false;
  auto deadline = start + std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int pr = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (pr < 0) break;
    if (pr == 0) continue;
    char chunk[4096];
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  CaseResult r{c.folder, c.name, "failed", "", 0};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (timed_out) {
    r.reason = "timed out after " + std::to_string(static_cast<int>(o.timeout_s)) + " s";
  } else if (WIFSIGNALED(status)) {
    r.reason = "crashed with signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
  } else if (buf.empty()) {
    r.reason = "the case's process exited without a result";
  } else {
    auto nl = buf.find('\n');
    r.status = buf.substr(0, nl);
    r.reason = nl == std::string::npos ? "" : buf.substr(nl + 1);
  }
  return r;
}

}  // namespace kpt::conformance
