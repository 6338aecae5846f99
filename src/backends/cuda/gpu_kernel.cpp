#include "backends/cuda/gpu_kernel.hpp"

#include "kpt/error.hpp"

namespace kpt::cuda {

DType GpuPrepareContext::device_dtype(size_t input) const {
  if (input >= input_types.size() || !input_types[input]) return DType::Undefined;
  const ir::Type& t = *input_types[input];
  if (t.kind != ir::Type::Kind::Tensor) return DType::Undefined;
  return device_dtype_of(t.elem);
}

int64_t GpuPrepareContext::input_rank(size_t i) const {
  if (i >= input_types.size() || !input_types[i] || !input_types[i]->shape) return -1;
  return static_cast<int64_t>(input_types[i]->shape->size());
}

GpuKernelRegistry& GpuKernelRegistry::instance() {
  static GpuKernelRegistry r;
  return r;
}

void GpuKernelRegistry::add(const std::string& domain, const std::string& op, GpuKernelFactory f) {
  entries_.emplace_back(domain, op, std::move(f));
}

bool GpuKernelRegistry::has(const std::string& domain, const std::string& op) const {
  for (const auto& [d, o, f] : entries_) {
    if (d == domain && o == op) return true;
  }
  return false;
}

std::unique_ptr<GpuKernel> GpuKernelRegistry::prepare(const GpuPrepareContext& ctx) const {
  for (const auto& [d, o, f] : entries_) {
    if (d != ctx.node.domain || o != ctx.node.op_type) continue;
    if (auto k = f(ctx)) {
      k->host_inputs.resize(ctx.node.inputs.size(), false);
      return k;
    }
  }
  return nullptr;
}

GemmPrecision gemm_precision(DType float_dtype) {
  switch (float_dtype) {
    case DType::F16:
      return GemmPrecision::F16;
    case DType::BF16:
      return GemmPrecision::BF16;
    default:
      return GemmPrecision::F32;
  }
}

std::string dtype_tag(DType float_dtype) {
  return std::string(dtype_name(float_dtype));
}

int64_t normalize_axis(int64_t axis, int64_t rank, const ir::Node& node) {
  if (axis < -rank || axis >= rank)
    throw Error(node.label() + ": axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace kpt::cuda
