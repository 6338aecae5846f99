// Fast kernels for MatMul and kpt.MatMulBiasAct (Y = act(A x B + C)): a constant 2-D B runs
// through the prepacked GEMM at the session's precision; a run-time B (attention) through
// oneDNN's batched matmul in fp32.
#include <memory>
#include <string>

#include "backends/cpu/dnnl_batched_matmul.hpp"
#include "backends/cpu/dnnl_packed_gemm.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

// C as a bias vector: N floats whose broadcast only runs along the last axis and does not
// raise the output's rank. nullptr when C is anything else.
const float* bias_vector(const Tensor& c, int64_t n, size_t out_rank) {
  if (c.dtype() != DType::F32 || c.numel() != n || c.rank() > out_rank) return nullptr;
  if (c.rank() > 0 && c.dims().back() != n) return nullptr;
  return c.data<float>();
}

bool shape_is_bias(const ir::Type* t, int64_t n) {
  if (!t || !t->shape) return true;  // checked again at run time
  if (t->elem != DType::F32) return false;
  const ir::Shape& s = *t->shape;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool last = i + 1 == s.size();
    if (!s[i].known() || s[i].value != (last ? n : 1)) return false;
  }
  return true;
}

// B is a constant [K, N] weight.
class PackedMatmulKernel final : public ops::Kernel {
 public:
  PackedMatmulKernel(std::string op, const Tensor& w, PackedGemm::Options o)
      : op_(std::move(op)), gemm_(w.data<float>(), w.dims()[0], w.dims()[1], std::move(o)) {}

  void run(ops::KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    if (a.dtype() != DType::F32 || a.rank() < 1 || a.dims().back() != gemm_.k())
      return ops::run_reference(ctx);
    Dims out = a.dims();
    out.back() = gemm_.n();
    const float* bias = nullptr;
    if (has_bias(ctx)) {
      bias = bias_vector(ctx.input(2), gemm_.n(), out.size());
      if (!bias) return ops::run_reference(ctx);
    }
    Tensor y = ctx.allocate_output(0, DType::F32, out);
    if (!gemm_.run(a.data<float>(), a.numel() / gemm_.k(), bias, y.data<float>()))
      return ops::run_reference(ctx);
    ctx.set_output(0, std::move(y));
  }
  std::string name() const override {
    return "dnnl." + op_ + "(" + gemm_precision_name(gemm_.precision()) + ")";
  }
  static bool has_bias(const ops::KernelContext& ctx) { return ctx.has_input(2); }

 private:
  std::string op_;
  PackedGemm gemm_;
};

// B known only at run time.
class BatchedMatmulKernel final : public ops::Kernel {
 public:
  BatchedMatmulKernel(std::string op, bool has_bias, std::optional<dnnl_util::Eltwise> act)
      : op_(std::move(op)), has_bias_(has_bias), matmul_(has_bias, act) {}

  void run(ops::KernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != DType::F32 || b.dtype() != DType::F32) return ops::run_reference(ctx);
    const auto out = BatchedMatmul::output_dims(a.dims(), b.dims());
    if (!out || ctx.has_input(2) != has_bias_) return ops::run_reference(ctx);
    const float* bias = nullptr;
    if (has_bias_) {
      bias = bias_vector(ctx.input(2), out->back(), out->size());
      if (!bias) return ops::run_reference(ctx);
    }
    Tensor y = ctx.allocate_output(0, DType::F32, *out);
    if (!matmul_.run(a.data<float>(), a.dims(), b.data<float>(), b.dims(), bias, y.data<float>()))
      return ops::run_reference(ctx);
    ctx.set_output(0, std::move(y));
  }
  std::string name() const override { return "dnnl." + op_ + "_batched(fp32)"; }

 private:
  std::string op_;
  bool has_bias_;
  BatchedMatmul matmul_;
};

int64_t rows_hint(const ir::Type* a) {
  if (!a || !a->shape || a->shape->empty()) return 128;
  int64_t m = 1;
  for (size_t i = 0; i + 1 < a->shape->size(); ++i) {
    if (!(*a->shape)[i].known()) return 128;
    m *= (*a->shape)[i].value;
  }
  return m > 0 ? m : 128;
}

std::unique_ptr<ops::Kernel> prepare(const PrepareContext& ctx, const std::string& op,
                                     const std::string& activation) {
  const ir::Node& node = ctx.node;
  if (node.inputs.size() < 2 || node.inputs[0].empty() || node.inputs[1].empty()) return nullptr;
  if (!dnnl_util::known_activation(activation)) return nullptr;
  const bool has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
  const ir::Type* a = ctx.input_types[0];
  if (a && a->elem != DType::F32) return nullptr;
  const Tensor* w = ctx.constants[1];
  try {
    if (w && w->dtype() == DType::F32 && w->rank() == 2 && w->numel() > 0) {
      if (has_bias && !shape_is_bias(ctx.input_types[2], w->dims()[1])) return nullptr;
      PackedGemm::Options o;
      o.precision = gemm_precision(ctx.precision);
      o.has_bias = has_bias;
      o.activation = dnnl_util::activation(activation);
      o.m_hint = rows_hint(a);
      o.packed = ctx.packed;
      o.packed_prefix = packed_key_prefix(node, ctx.precision);
      return std::make_unique<PackedMatmulKernel>(op, *w, std::move(o));
    }
    const ir::Type* b = ctx.input_types[1];
    if (b && (b->elem != DType::F32 || (b->shape && b->shape->size() < 2))) return nullptr;
    if (a && a->shape && a->shape->size() < 2) return nullptr;
    return std::make_unique<BatchedMatmulKernel>(op, has_bias, dnnl_util::activation(activation));
  } catch (const dnnl::error&) {
    return nullptr;  // oneDNN has no kernel for these weights
  }
}

std::unique_ptr<ops::Kernel> prepare_matmul(const PrepareContext& ctx) {
  if (ctx.node.inputs.size() != 2) return nullptr;
  return prepare(ctx, "matmul", "");
}

std::unique_ptr<ops::Kernel> prepare_matmul_bias_act(const PrepareContext& ctx) {
  return prepare(ctx, "matmul_bias_act", ctx.node.attr_string("activation", ""));
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "MatMul", prepare_matmul);
KPT_REGISTER_CPU_KERNEL("kpt", "MatMulBiasAct", prepare_matmul_bias_act);

}  // namespace kpt::cpu
