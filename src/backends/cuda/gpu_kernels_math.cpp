// GPU adapters for products: MatMul, Gemm and kpt.MatMulBiasAct on cuBLASLt (bias and
// activation in the GEMM's epilogue where cuBLASLt has it), and Attention on flash attention.
#include <utility>

#include "backends/cuda/attention.hpp"
#include "backends/cuda/fp8_product.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "backends/cuda/pointwise.hpp"
#include "backends/cuda/reduce.hpp"

namespace kpt::cuda {

namespace {

const ir::Shape* shape_of(const GpuPrepareContext& c, size_t i) {
  if (i >= c.input_types.size() || !c.input_types[i] || !c.input_types[i]->shape) return nullptr;
  return &*c.input_types[i]->shape;
}

// What follows the product: an epilogue cuBLASLt fuses, and GELU (erf) as a second kernel with
// the bias folded in, since cuBLASLt's GELU is the tanh approximation.
struct ProductTail {
  Epilogue epilogue = Epilogue::None;
  bool erf_gelu = false;
};

// Y[..., M, N] = A[..., M, K] * B (+ bias[N]) (+ activation). B is [K, N] (b_transposed:
// [N, K]) shared by every row of A, or [..., K, N] with A's batch dims (one GEMM per batch).
void run_product(GpuRunContext& ctx, GpuArgs& g, const DeviceBuffer& a, const DeviceBuffer& b,
                 const DeviceBuffer* bias, bool b_transposed, float alpha, ProductTail tail) {
  const Dims& ad = a.dims();
  const Dims& bd = b.dims();
  if (ad.size() < 2 || bd.size() < 2)
    throw Error("MatMul on the GPU takes operands of rank 2 or more, got " + a.describe() +
                " and " + b.describe());
  const int64_t k = ad.back();
  const int64_t n = b_transposed ? bd[bd.size() - 2] : bd.back();
  const int64_t kb = b_transposed ? bd.back() : bd[bd.size() - 2];
  if (k != kb)
    throw Error("MatMul on the GPU: inner dims differ (" + a.describe() + " times " + b.describe() +
                ")");
  Dims out = ad;
  out.back() = n;
  g.out[0] = ctx.alloc.allocate(a.dtype(), out);
  const GemmPrecision p = gemm_precision(a.dtype());
  const size_t esize = dtype_size(a.dtype());
  const void* epilogue_bias = tail.epilogue == Epilogue::None ? nullptr : bias->data();
  if (bd.size() == 2) {
    const int64_t m = a.numel() / k;
    ctx.gemm.run(p, {m, n, k, b_transposed}, a.data(), b.data(), g.out[0].data(), ctx.stream,
                 epilogue_bias, tail.epilogue, alpha);
  } else {
    if (!std::equal(ad.begin(), ad.end() - 2, bd.begin(), bd.end() - 2))
      throw Error("MatMul on the GPU: batch dims of " + a.describe() + " and " + b.describe() +
                  " must be equal");
    const int64_t m = ad[ad.size() - 2];
    const int64_t batches = a.numel() / (m * k);
    for (int64_t i = 0; i < batches; ++i) {
      ctx.gemm.run(p, {m, n, k, b_transposed},
                   static_cast<const char*>(a.data()) + i * m * k * esize,
                   static_cast<const char*>(b.data()) + i * k * n * esize,
                   static_cast<char*>(g.out[0].data()) + i * m * n * esize, ctx.stream,
                   epilogue_bias, tail.epilogue, alpha);
    }
  }
  if (tail.erf_gelu) {
    const int64_t rows = g.out[0].numel() / n;
    gelu(a.dtype(), g.out[0].data(), bias ? bias->data() : nullptr, g.out[0].data(), rows, n, false,
         ctx.stream);
  }
}

// B is shared by all rows (rank 2) or has A's batch dims exactly (per inferred shapes).
bool product_shapes_ok(const GpuPrepareContext& c) {
  const ir::Shape* a = shape_of(c, 0);
  const ir::Shape* b = shape_of(c, 1);
  if (!a || !b || a->size() < 2 || b->size() < 2) return false;
  if (b->size() == 2) return true;
  if (a->size() != b->size()) return false;
  for (size_t i = 0; i + 2 < a->size(); ++i) {
    const ir::Dim& x = (*a)[i];
    const ir::Dim& y = (*b)[i];
    const bool same =
        x.known() && y.known() ? x.value == y.value : (!x.symbol.empty() && x.symbol == y.symbol);
    if (!same) return false;
  }
  return true;
}

// A bias the epilogue can take: one value per output column, [N] or [1, N] (not a single value
// broadcast over the columns).
bool is_row_bias(const GpuPrepareContext& c, size_t i) {
  const ir::Shape* s = shape_of(c, i);
  if (!s || s->empty()) return false;
  for (size_t d = 0; d + 1 < s->size(); ++d) {
    if (!(*s)[d].known() || (*s)[d].value != 1) return false;
  }
  const ir::Type* out = c.output_types.empty() ? nullptr : c.output_types[0];
  if (!out || !out->shape || out->shape->empty()) return false;
  const ir::Dim& n = out->shape->back();
  const ir::Dim& b = s->back();
  return n.known() && b.known() ? n.value == b.value : !n.symbol.empty() && n.symbol == b.symbol;
}

// FP8 sessions: a product by a constant rank-2 weight as an FP8 GEMM. nullptr otherwise; when
// the weight is constant but its dims do not fit FP8, `why_not` says so (for the kernel name).
std::unique_ptr<GpuKernel> fp8_product(const GpuPrepareContext& c, bool b_transposed,
                                       Epilogue epilogue, const std::string& activation,
                                       std::string& why_not) {
  if (!c.fp8_gemms || c.device_dtype(0) != DType::F16) return nullptr;
  const Tensor* w = c.constants.size() > 1 ? c.constants[1] : nullptr;
  if (!w || w->dims().size() != 2) return nullptr;
  const int64_t k = b_transposed ? w->dims()[1] : w->dims()[0];
  const int64_t n = b_transposed ? w->dims()[0] : w->dims()[1];
  why_not = fp8_weight_refusal(k, n);
  if (!why_not.empty()) return nullptr;
  return std::make_unique<Fp8ProductKernel>(w, b_transposed, 1, epilogue, activation);
}

std::string f16_tag(DType dt, const std::string& fp8_refusal) {
  return dtype_tag(dt) + (fp8_refusal.empty() ? "" : ", not fp8: " + fp8_refusal);
}

std::unique_ptr<GpuKernel> make_matmul(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || c.device_dtype(1) != dt || !product_shapes_ok(c)) return nullptr;
  std::string why_not;
  if (auto k = fp8_product(c, false, Epilogue::None, "", why_not)) return k;
  if (wants_padded_weight(c)) return make_padded_weight_product(c, Epilogue::None);
  return std::make_unique<LambdaGpuKernel>(
      "cublasLt.gemm(" + f16_tag(dt, why_not) + ")", [](GpuRunContext& ctx, GpuArgs& g) {
        run_product(ctx, g, *g.in[0], *g.in[1], nullptr, false, 1.0f, {});
      });
}

std::unique_ptr<GpuKernel> make_matmul_bias_act(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || c.device_dtype(1) != dt || !product_shapes_ok(c)) return nullptr;
  const bool has_bias = c.has_input(2);
  if (has_bias && (c.device_dtype(2) != dt || !is_row_bias(c, 2))) return nullptr;
  const std::string act = c.node.attr_string("activation", "");
  ProductTail tail;
  if (act.empty()) {
    tail.epilogue = has_bias ? Epilogue::Bias : Epilogue::None;
  } else if (act == "Relu" && has_bias) {
    tail.epilogue = Epilogue::BiasRelu;
  } else if (act == "GeluTanh" && has_bias) {
    tail.epilogue = Epilogue::BiasGelu;
  } else if (act == "Gelu" && has_bias && dt != DType::F32) {
    // cuBLASLt's epilogue computes the tanh form; it differs from erf GELU by at most 4.7e-4
    // (at x = 2.7, where the output's f16 spacing is 2e-3), under the f16/bf16 rounding of the
    // product itself, and saves a pass over the [rows, N] result (N = 3072 in BERT's FFN).
    tail.epilogue = Epilogue::BiasGelu;
  } else if (act == "Gelu") {
    tail.erf_gelu = true;  // bias folded into the GELU kernel
  } else {
    return nullptr;
  }
  std::string why_not;
  if (!tail.erf_gelu) {
    if (auto k = fp8_product(c, false, tail.epilogue, act, why_not)) return k;
  }
  if (!tail.erf_gelu && (has_bias || act.empty()) && wants_padded_weight(c))
    return make_padded_weight_product(c, tail.epilogue);
  return std::make_unique<LambdaGpuKernel>(
      "cublasLt.gemm(" + f16_tag(dt, why_not) + (act.empty() ? "" : "+" + act) + ")",
      [tail](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer* bias = g.in.size() > 2 ? g.in[2] : nullptr;
        run_product(ctx, g, *g.in[0], *g.in[1], bias, false, 1.0f, tail);
      });
}

std::unique_ptr<GpuKernel> make_gemm(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || c.device_dtype(1) != dt) return nullptr;
  if (c.input_rank(0) != 2 || c.input_rank(1) != 2 || c.node.attr_int("transA", 0) != 0)
    return nullptr;
  const bool has_bias = c.has_input(2);
  if (has_bias &&
      (c.device_dtype(2) != dt || !is_row_bias(c, 2) || c.node.attr_float("beta", 1.0f) != 1.0f))
    return nullptr;
  const bool trans_b = c.node.attr_int("transB", 0) != 0;
  const float alpha = c.node.attr_float("alpha", 1.0f);
  std::string why_not;
  if (alpha == 1.0f) {
    if (auto k = fp8_product(c, trans_b, has_bias ? Epilogue::Bias : Epilogue::None, "", why_not))
      return k;
  }
  return std::make_unique<LambdaGpuKernel>(
      "cublasLt.gemm(" + f16_tag(dt, why_not) + ")",
      [trans_b, alpha, has_bias](GpuRunContext& ctx, GpuArgs& g) {
        ProductTail tail;
        tail.epilogue = has_bias ? Epilogue::Bias : Epilogue::None;
        run_product(ctx, g, *g.in[0], *g.in[1], has_bias ? g.in[2] : nullptr, trans_b, alpha, tail);
      });
}

// ONNX Attention with 4D Q, K, V [batch, heads, seq, head_dim] of f16/bf16, no past, no
// softcap, head_dim 64 or 128, and a mask (if any) that only pads keys: broadcast over heads
// and queries. The mask becomes per-batch key lengths (flash attention's form).
std::unique_ptr<GpuKernel> make_attention(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (dt != DType::F16 && dt != DType::BF16) return nullptr;
  if (c.device_dtype(1) != dt || c.device_dtype(2) != dt) return nullptr;
  for (size_t i = 4; i < c.node.inputs.size(); ++i) {
    if (c.has_input(i)) return nullptr;
  }
  for (size_t i = 1; i < c.node.outputs.size(); ++i) {
    if (!c.node.outputs[i].empty()) return nullptr;
  }
  if (c.node.attr_float("softcap", 0.0f) != 0.0f) return nullptr;
  const ir::Shape* q = shape_of(c, 0);
  const ir::Shape* k = shape_of(c, 1);
  if (!q || !k || q->size() != 4 || k->size() != 4) return nullptr;
  const ir::Dim& d = q->back();
  if (!d.known() || (d.value != 64 && d.value != 128)) return nullptr;
  const ir::Dim& qh = (*q)[1];
  const ir::Dim& kh = (*k)[1];
  if (!(qh.known() && kh.known() && qh.value == kh.value)) return nullptr;
  const bool has_mask = c.has_input(3);
  if (has_mask) {
    const ir::Shape* m = shape_of(c, 3);
    const DType md = c.device_dtype(3);
    if (!m || m->size() < 1 || m->size() > 4 || (md != DType::Bool && md != dt)) return nullptr;
    // Every dim but the batch (first of a rank-4 mask) and the keys (last) must be 1.
    for (size_t i = 0; i + 1 < m->size(); ++i) {
      const bool batch_dim = m->size() == 4 && i == 0;
      if (!batch_dim && !((*m)[i].known() && (*m)[i].value == 1)) return nullptr;
    }
  }
  const bool causal = c.node.attr_int("is_causal", 0) != 0;
  const float scale = c.node.attr_float("scale", 0.0f);
  const bool seq_major[3] = {c.seq_major_input(0), c.seq_major_input(1), c.seq_major_input(2)};
  const bool seq_major_out = c.seq_major_output;
  const bool any_seq_major = seq_major[0] || seq_major[1] || seq_major[2] || seq_major_out;
  return std::make_unique<LambdaGpuKernel>(
      std::string("cuda.flash_attention") + (causal ? "(causal)" : "") +
          (any_seq_major ? "(seq-major)" : ""),
      [causal, scale, has_mask, seq_major, seq_major_out](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& qb = *g.in[0];
        const DeviceBuffer& kb = *g.in[1];
        const DeviceBuffer& vb = *g.in[2];
        // Dims as [batch, heads, seq, head_dim] whichever way the buffer holds them.
        auto heads_first = [](const DeviceBuffer& b, bool sm) {
          Dims d = b.dims();
          if (d.size() != 4)
            throw Error("Attention on the GPU: Q, K and V must be 4-D, not " + b.describe());
          if (sm) std::swap(d[1], d[2]);
          return d;
        };
        const Dims qd = heads_first(qb, seq_major[0]);
        const Dims kd = heads_first(kb, seq_major[1]);
        const Dims vd = heads_first(vb, seq_major[2]);
        AttentionArgs at;
        at.dtype = qb.dtype();
        at.batch = qd[0];
        at.heads = qd[1];
        at.seq_q = qd[2];
        at.head_dim = qd[3];
        at.seq_kv = kd[2];
        if (kd != vd || kd[0] != at.batch || kd[1] != at.heads || kd[3] != at.head_dim)
          throw Error("Attention on the GPU: K " + kb.describe() + " and V " + vb.describe() +
                      " must match Q " + qb.describe() + " in batch, heads and head size");
        auto strides = [&](bool sm, int64_t seq) {
          return sm ? HeadStrides::seq_major(at.heads, seq, at.head_dim) : HeadStrides{};
        };
        at.q_strides = strides(seq_major[0], at.seq_q);
        at.k_strides = strides(seq_major[1], at.seq_kv);
        at.v_strides = strides(seq_major[2], at.seq_kv);
        at.o_strides = strides(seq_major_out, at.seq_q);
        g.out[0] = ctx.alloc.allocate(
            qb.dtype(), seq_major_out ? Dims{at.batch, at.seq_q, at.heads, at.head_dim} : qd);
        DeviceBuffer lens;
        if (has_mask) {
          const DeviceBuffer& m = *g.in[3];
          const Dims& md = m.dims();
          const int64_t mb = md.size() == 4 ? md[0] : 1;
          if (md.back() != at.seq_kv || (mb != 1 && mb != at.batch))
            throw Error("Attention on the GPU: mask " + m.describe() +
                        " is not a key-padding mask for keys " + kb.describe());
          const int mask_value = g.in_values.size() > 3 ? g.in_values[3] : -1;
          const std::pair<std::string, int> key{"key lengths", mask_value};
          const DeviceBuffer* shared = nullptr;
          if (ctx.derived && mask_value >= 0) {
            auto it = ctx.derived->find(key);
            if (it != ctx.derived->end()) shared = &it->second;
          }
          if (shared) {
            lens = *shared;
          } else {
            lens = ctx.alloc.allocate(DType::I32, {at.batch});
            mask_to_lengths(m.dtype(), m.data(), at.batch, mb == 1 ? 0 : at.seq_kv, at.seq_kv,
                            lens.data_as<int32_t>(), ctx.error_word, ctx.stream);
            if (ctx.derived && mask_value >= 0) ctx.derived->emplace(key, lens);
          }
          at.kv_lens = lens.data_as<int32_t>();
        }
        at.q = qb.data();
        at.k = kb.data();
        at.v = vb.data();
        at.o = g.out[0].data();
        at.scale = scale;
        at.causal = causal;
        flash_attention(at, ctx.stream);
      });
}

}  // namespace

std::unique_ptr<GpuKernel> make_sibling_projections(DType float_dtype, int64_t count, bool has_bias,
                                                    bool fp8, const Tensor* stacked_weights) {
  if (fp8 && float_dtype == DType::F16 && stacked_weights) {
    auto k = std::make_unique<Fp8ProductKernel>(stacked_weights, false, count,
                                                has_bias ? Epilogue::Bias : Epilogue::None, "");
    k->host_inputs.assign(has_bias ? 3 : 2, false);
    return k;
  }
  return std::make_unique<LambdaGpuKernel>(
      "cublasLt.gemm(" + dtype_tag(float_dtype) + " x" + std::to_string(count) + " siblings)",
      [count, has_bias](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const DeviceBuffer& w = *g.in[1];
        const Dims& wd = w.dims();
        if (wd.size() != 3 || wd[0] != count || x.dims().empty() || x.dims().back() != wd[1])
          throw Error("sibling projections on the GPU: input " + x.describe() +
                      " does not fit stacked weights " + w.describe());
        const int64_t k = wd[1], n = wd[2], m = x.numel() / k;
        Dims out = x.dims();
        out.back() = n;
        DeviceBuffer all = ctx.alloc.allocate(x.dtype(), {count, m, n});
        GemmShape shape{m, n, k, false, count};
        ctx.gemm.run(gemm_precision(x.dtype()), shape, x.data(), w.data(), all.data(), ctx.stream,
                     has_bias ? g.in[2]->data() : nullptr,
                     has_bias ? Epilogue::Bias : Epilogue::None);
        for (int64_t i = 0; i < count; ++i)
          g.out[static_cast<size_t>(i)] = all.part(i * m * n, out);
      },
      std::vector<bool>(has_bias ? 3 : 2, false));
}

KPT_REGISTER_GPU_KERNEL("", "MatMul", make_matmul);
KPT_REGISTER_GPU_KERNEL("", "Gemm", make_gemm);
KPT_REGISTER_GPU_KERNEL("kpt", "MatMulBiasAct", make_matmul_bias_act);
KPT_REGISTER_GPU_KERNEL("", "Attention", make_attention);

}  // namespace kpt::cuda
