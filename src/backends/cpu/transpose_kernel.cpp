// Transpose when the last axes stay in place (the [B,S,H,D] <-> [B,H,S,D] head split and merge
// around attention): whole runs of the unmoved trailing axes are copied with memcpy, threads
// splitting the outer index space. Permutations that move the last axis run the reference.
#include <cstring>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/parallel.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

class TransposeKernel final : public ops::Kernel {
 public:
  std::string name() const override { return "cpu.transpose"; }

  void run(ops::KernelContext& ctx) const override {
    if (!ctx.value(0).is_tensor() || ctx.input(0).dtype() == DType::String) {
      return ops::run_reference(ctx);
    }
    const Tensor& x = ctx.input(0);
    const size_t rank = x.rank();
    std::vector<int64_t> perm = ctx.attr_ints("perm");
    if (!ctx.node().has_attr("perm")) {
      perm.resize(rank);
      for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
    }
    if (perm.size() != rank || rank == 0) return ops::run_reference(ctx);
    for (auto& p : perm) {
      if (p < 0) p += static_cast<int64_t>(rank);
      if (p < 0 || p >= static_cast<int64_t>(rank)) return ops::run_reference(ctx);
    }
    // Trailing axes that do not move form one contiguous run in both tensors.
    size_t kept = 0;
    while (kept < rank && perm[rank - 1 - kept] == static_cast<int64_t>(rank - 1 - kept)) ++kept;
    if (kept == 0 || kept == rank) return ops::run_reference(ctx);
    const size_t outer_rank = rank - kept;
    Dims out_dims(rank);
    for (size_t i = 0; i < rank; ++i) out_dims[i] = x.dims()[static_cast<size_t>(perm[i])];
    Tensor y = ctx.allocate_output(0, x.dtype(), out_dims);
    const size_t es = dtype_size(x.dtype());
    int64_t run = 1;
    for (size_t i = outer_rank; i < rank; ++i) run *= x.dims()[i];
    const size_t run_bytes = static_cast<size_t>(run) * es;
    std::vector<int64_t> in_strides(rank, 1);
    for (size_t i = rank - 1; i-- > 0;) in_strides[i] = in_strides[i + 1] * x.dims()[i + 1];
    std::vector<int64_t> step(outer_rank);
    for (size_t d = 0; d < outer_rank; ++d) step[d] = in_strides[static_cast<size_t>(perm[d])];
    int64_t outer = 1;
    for (size_t d = 0; d < outer_rank; ++d) outer *= out_dims[d];
    const char* src = static_cast<const char*>(x.raw());
    char* dst = static_cast<char*>(y.raw());
    parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, run)),
                 [&](int64_t begin, int64_t end) {
                   std::vector<int64_t> idx(outer_rank);
                   int64_t rest = begin, off = 0;
                   for (size_t d = outer_rank; d-- > 0;) {
                     idx[d] = rest % out_dims[d];
                     rest /= out_dims[d];
                     off += idx[d] * step[d];
                   }
                   for (int64_t o = begin; o < end; ++o) {
                     std::memcpy(dst + static_cast<size_t>(o) * run_bytes,
                                 src + static_cast<size_t>(off) * es, run_bytes);
                     for (size_t d = outer_rank; d-- > 0;) {
                       off += step[d];
                       if (++idx[d] < out_dims[d]) break;
                       off -= step[d] * out_dims[d];
                       idx[d] = 0;
                     }
                   }
                 });
    ctx.set_output(0, std::move(y));
  }
};

std::unique_ptr<ops::Kernel> prepare_transpose(const PrepareContext& ctx) {
  const auto perm = ctx.node.attr_ints("perm");
  // Only permutations that keep the last axis where it is.
  if (perm.empty() || perm.back() != static_cast<int64_t>(perm.size()) - 1) return nullptr;
  return std::make_unique<TransposeKernel>();
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Transpose", prepare_transpose);

}  // namespace kpt::cpu
