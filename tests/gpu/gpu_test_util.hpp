#pragma once
// Helpers for the GPU tests: fresh random host tensors (a new seed each run, printed so a
// failure can be replayed with KPT_GPU_SEED), device round trips, the CPU reference kernels
// run through ops::run_node, and relative-error comparison.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/stream.hpp"
#include "ir/graph.hpp"
#include "kpt/tensor.hpp"

namespace kpt::gpu_test {

// The seed of this process's random inputs (from KPT_GPU_SEED, else random_device).
uint64_t seed();
// Uniform in [lo, hi) as f32, then rounded to `dtype` (f32, f16, bf16).
Tensor random_tensor(DType dtype, const Dims& dims, float lo = -1.0f, float hi = 1.0f);
Tensor to_f32(const Tensor& t);

// One stream, pool and staging buffer shared by the tests.
struct Gpu {
  cuda::Stream stream;
  cuda::DevicePool& pool = cuda::DevicePool::for_current_device();
  cuda::PinnedBuffer staging;
  cuda::DeviceBuffer upload(const Tensor& t);
  // Device memory filled with 0xFF bytes (NaN for every float type), so that an element the
  // kernel does not write fails the comparison.
  cuda::DeviceBuffer poisoned(DType dtype, const Dims& dims);
  Tensor download(const cuda::DeviceBuffer& b);
};
Gpu& gpu();

// Runs the registered CPU reference kernel of `op` on `inputs` (an undefined tensor marks an
// omitted optional input) and returns its outputs.
std::vector<Tensor> reference(const std::string& op, int opset, const std::vector<Tensor>& inputs,
                              size_t num_outputs = 1,
                              const std::map<std::string, ir::Attribute>& attrs = {});
ir::Attribute int_attr(const std::string& name, int64_t v);
ir::Attribute float_attr(const std::string& name, float v);
ir::Attribute string_attr(const std::string& name, const std::string& v);

struct Diff {
  double rel_l2 = 0;   // ||got - want|| / ||want||
  double max_abs = 0;  // largest |got - want|
  int64_t non_finite = 0;
};
Diff compare(const Tensor& got, const Tensor& want);
// Fails the current test when the error is over `rel_l2_tol` or any element is not finite.
void expect_close(const Tensor& got, const Tensor& want, double rel_l2_tol,
                  const std::string& what);

}  // namespace kpt::gpu_test
