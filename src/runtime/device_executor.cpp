#include "runtime/device_executor.hpp"

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"

namespace kpt::runtime {

ir::Graph optimize_for_cuda(ir::Graph g, OptimizationLevel level, passes::OptimizeReport* report) {
  passes::OptimizeReport r = passes::optimize(g, level, passes::PassTarget::Gpu);
  analysis::infer_shapes(g);
  if (report) *report = std::move(r);
  return g;
}

DeviceTarget parse_target(const std::string& s) {
  DeviceTarget t;
  if (s.empty() || s == "cpu") return t;
  const std::string expected = "; expected cpu, cuda or cuda:N (N a device index)";
  if (s == "cuda") {
    t.kind = "cuda";
    return t;
  }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 &&
      s.find_first_not_of("0123456789", 5) == std::string::npos && s.size() < 10) {
    t.kind = "cuda";
    t.index = std::stoi(s.substr(5));
    return t;
  }
  fail("unknown target '" + s + "'" + expected);
}

#if !defined(KPT_HAVE_CUDA)
std::unique_ptr<DeviceExecutor> make_cuda_executor(const ir::Graph&, const SessionOptions&,
                                                   const DeviceTarget&) {
  fail(
      "target cuda: this build of kpt has no CUDA backend (nvcc was not found at build time, "
      "or it was configured with -DKPT_CUDA=OFF)");
}

std::string describe_cuda_plan(const ir::Graph&, Precision) {
  fail("target cuda: this build of kpt has no CUDA backend");
}
#endif

}  // namespace kpt::runtime
