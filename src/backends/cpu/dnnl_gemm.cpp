// Fast kernel for Gemm (Y = alpha * op(A) * op(B) + beta * C) with a constant B: alpha folds
// into the packed weights, a constant row-vector C becomes the bias, any other C is written
// into Y first and added by oneDNN's sum post-op with scale beta.
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/dnnl_packed_gemm.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

class GemmKernel final : public ops::Kernel {
 public:
  GemmKernel(const Tensor& w, bool trans_a, bool trans_b, std::vector<float> bias,
             PackedGemm::Options o)
      : trans_a_(trans_a),
        accumulate_(o.accumulate_beta != 0.f),
        bias_(std::move(bias)),
        gemm_(w.data<float>(), trans_b ? w.dims()[1] : w.dims()[0],
              trans_b ? w.dims()[0] : w.dims()[1], std::move(o)) {}

  void run(ops::KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    if (a.dtype() != DType::F32 || a.rank() != 2 || a.dims()[trans_a_ ? 0 : 1] != gemm_.k())
      return ops::run_reference(ctx);
    const int64_t m = a.dims()[trans_a_ ? 1 : 0];
    const int64_t n = gemm_.n();
    Tensor y = ctx.allocate_output(0, DType::F32, {m, n});
    if (accumulate_) {
      const Tensor& c = ctx.input(2);
      if (c.dtype() != DType::F32 || c.rank() > 2) return ops::run_reference(ctx);
      const int64_t cr = c.rank() == 2 ? c.dims()[0] : 1;
      const int64_t cc = c.rank() >= 1 ? c.dims().back() : 1;
      if ((cr != 1 && cr != m) || (cc != 1 && cc != n)) return ops::run_reference(ctx);
      const float* pc = c.data<float>();
      float* py = y.data<float>();
      for (int64_t i = 0; i < m; ++i) {
        const float* row = pc + (cr == 1 ? 0 : i * cc);
        for (int64_t j = 0; j < n; ++j) py[i * n + j] = row[cc == 1 ? 0 : j];
      }
    }
    if (!gemm_.run(a.data<float>(), m, bias_.empty() ? nullptr : bias_.data(), y.data<float>()))
      return ops::run_reference(ctx);
    ctx.set_output(0, std::move(y));
  }
  std::string name() const override {
    return std::string("dnnl.gemm(") + gemm_precision_name(gemm_.precision()) + ")";
  }

 private:
  bool trans_a_;
  bool accumulate_;
  std::vector<float> bias_;
  PackedGemm gemm_;
};

std::unique_ptr<ops::Kernel> prepare_gemm(const PrepareContext& ctx) {
  const ir::Node& node = ctx.node;
  if (node.inputs.size() < 2 || node.inputs[0].empty() || node.inputs[1].empty()) return nullptr;
  const ir::Type* a = ctx.input_types[0];
  if (a && (a->elem != DType::F32 || (a->shape && a->shape->size() != 2))) return nullptr;
  const Tensor* w = ctx.constants[1];
  if (!w || w->dtype() != DType::F32 || w->rank() != 2 || w->numel() == 0) return nullptr;
  const bool trans_a = node.attr_int("transA", 0) != 0;
  const bool trans_b = node.attr_int("transB", 0) != 0;
  const float beta = node.attr_float("beta", 1.f);
  const int64_t n = trans_b ? w->dims()[0] : w->dims()[1];
  PackedGemm::Options o;
  o.precision = gemm_precision(ctx.precision);
  o.weights_transposed = trans_b;
  o.a_transposed = trans_a;
  o.alpha = node.attr_float("alpha", 1.f);
  o.packed = ctx.packed;
  o.packed_prefix = packed_key_prefix(node, ctx.precision);
  if (a && a->shape && (*a->shape)[trans_a ? 1 : 0].known())
    o.m_hint = std::max<int64_t>(1, (*a->shape)[trans_a ? 1 : 0].value);
  std::vector<float> bias;
  const bool has_c = node.inputs.size() > 2 && !node.inputs[2].empty() && beta != 0.f;
  const Tensor* c = has_c ? ctx.constants[2] : nullptr;
  if (c && c->dtype() == DType::F32 &&
      (c->numel() == 1 ||
       (c->numel() == n && c->rank() >= 1 && c->rank() <= 2 && c->dims().back() == n))) {
    bias.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j)
      bias[static_cast<size_t>(j)] = beta * c->data<float>()[c->numel() == 1 ? 0 : j];
    o.has_bias = true;
  } else if (has_c) {
    o.accumulate_beta = beta;
  }
  try {
    return std::make_unique<GemmKernel>(*w, trans_a, trans_b, std::move(bias), std::move(o));
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Gemm", prepare_gemm);

}  // namespace kpt::cpu
