// Fast kpt ToBlocked16 / FromBlocked16 (the layout conversions at the ends of a blocked
// convolution chain, see src/ops/vision/blocked_conv.cpp) as oneDNN reorders between nchw and
// nChw16c, which are exactly the two tensors' memory orders.
#include <map>
#include <mutex>

#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/kernel_registry.hpp"
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
    const Entry& e = entry(plain);
    memory src(e.src, dnnl_util::engine(), const_cast<void*>(x.raw()));
    memory dst(e.dst, dnnl_util::engine(), y.raw());
    e.reorder.execute(dnnl_util::stream(), src, dst);
    dnnl_util::stream().wait();
    ctx.set_output(0, y);
  }

 private:
  struct Entry {
    memory::desc src, dst;
    dnnl::reorder reorder;
  };

  const Entry& entry(const Dims& plain) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(plain);
    if (it != cache_.end()) return it->second;
    const memory::dims d(plain.begin(), plain.end());
    const memory::desc nchw(d, memory::data_type::f32, memory::format_tag::nchw);
    const memory::desc blocked(d, memory::data_type::f32, memory::format_tag::nChw16c);
    Entry e{to_blocked_ ? nchw : blocked, to_blocked_ ? blocked : nchw, {}};
    e.reorder = dnnl::reorder(
        dnnl::reorder::primitive_desc(dnnl_util::engine(), e.src, dnnl_util::engine(), e.dst));
    return cache_.emplace(plain, std::move(e)).first->second;
  }

  bool to_blocked_;
  mutable std::mutex mu_;
  mutable std::map<Dims, Entry> cache_;
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
