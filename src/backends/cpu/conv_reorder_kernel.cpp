// Fast kpt ToBlocked16 / FromBlocked16 (the layout conversions at the ends of a blocked
// convolution chain, see src/ops/vision/blocked_conv.cpp) as oneDNN reorders between nchw and
// nChw16c, which are exactly the two tensors' memory orders.
#include <memory>

#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/shape_plan_cache.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

using dnnl::memory;

class BlockReorder : public ops::Kernel {
 public:
  explicit BlockReorder(bool to_blocked) : to_blocked_(to_blocked) {}
  std::string name() const override {
    return to_blocked_ ? "dnnl.reorder(to_blocked16)" : "dnnl.reorder(from_blocked16)";
  }

  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const bool ok = x.dtype() == DType::F32 && (to_blocked_ ? x.rank() == 4 && x.dim(1) % 16 == 0
                                                            : x.rank() == 5 && x.dim(4) == 16);
    if (!ok || x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    const Dims plain = to_blocked_ ? x.dims() : Dims{x.dim(0), x.dim(1) * 16, x.dim(2), x.dim(3)};
    const Dims out = to_blocked_ ? Dims{x.dim(0), x.dim(1) / 16, x.dim(2), x.dim(3), 16} : plain;
    Tensor y = ctx.allocate_output(0, DType::F32, out);
    const auto e = entry(plain);
    memory src(e->src, dnnl_util::engine(), const_cast<void*>(x.raw()));
    memory dst(e->dst, dnnl_util::engine(), y.raw());
    e->reorder.execute(dnnl_util::stream(), src, dst);
    dnnl_util::stream().wait();
    ctx.set_output(0, y);
  }

 private:
  struct Entry {
    memory::desc src, dst;
    dnnl::reorder reorder;
  };

  std::shared_ptr<const Entry> entry(const Dims& plain) const {
    return cache_.get(plain, [&] {
      const memory::dims d(plain.begin(), plain.end());
      const memory::desc nchw(d, memory::data_type::f32, memory::format_tag::nchw);
      const memory::desc blocked(d, memory::data_type::f32, memory::format_tag::nChw16c);
      auto e = std::make_shared<Entry>();
      e->src = to_blocked_ ? nchw : blocked;
      e->dst = to_blocked_ ? blocked : nchw;
      e->reorder = dnnl::reorder(
          dnnl::reorder::primitive_desc(dnnl_util::engine(), e->src, dnnl_util::engine(), e->dst));
      return e;
    });
  }

  bool to_blocked_;
  ShapePlanCache<Dims, Entry> cache_;  // by plain dims
};

std::unique_ptr<ops::Kernel> prepare_to_blocked(const PrepareContext&) {
  return std::make_unique<BlockReorder>(true);
}
std::unique_ptr<ops::Kernel> prepare_from_blocked(const PrepareContext&) {
  return std::make_unique<BlockReorder>(false);
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("kpt", "ToBlocked16", prepare_to_blocked);
KPT_REGISTER_CPU_KERNEL("kpt", "FromBlocked16", prepare_from_blocked);

}  // namespace kpt::cpu
