// The ONNX Attention node on the flash kernel (attention_flash.cpp): float32 Q/K/V, 3-D or 4-D,
// grouped-query heads, bool or float32 masks broadcast onto [B, H, Sq, L], is_causal, scale.
// Softcap, past key/value caches, nonpad_kv_seqlen and the present/qk outputs stay with the
// reference kernel (declined at load); shapes or types seen only at run time that the flash
// kernel does not take go to the reference kernel too, which also reports malformed inputs.
#include "backends/cpu/attention_kernel.hpp"

#include <cmath>
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

struct HeadView {
  int64_t batch = 0, heads = 0, seq = 0, size = 0;
  int64_t sb = 0, sh = 0, ss = 0;
};

// Reads [B, H, S, size] (4-D) or [B, S, H*size] (3-D, heads from the attribute) strides.
bool head_view(const Tensor& t, int64_t heads_attr, HeadView* v) {
  if (t.rank() == 4) {
    if (heads_attr != 0 && heads_attr != t.dim(1)) return false;
    *v = {t.dim(0), t.dim(1), t.dim(2), t.dim(3), 0, 0, 0};
    v->ss = v->size;
    v->sh = v->seq * v->size;
    v->sb = v->heads * v->sh;
    return true;
  }
  if (t.rank() != 3 || heads_attr <= 0 || t.dim(2) % heads_attr != 0) return false;
  *v = {t.dim(0), heads_attr, t.dim(1), t.dim(2) / heads_attr, 0, 0, 0};
  v->sh = v->size;
  v->ss = t.dim(2);
  v->sb = v->seq * v->ss;
  return true;
}

class FlashAttention final : public ops::Kernel {
 public:
  std::string name() const override { return "cpu.attention(flash)"; }

  void run(ops::KernelContext& ctx) const override {
    AttentionProblem p;
    if (!describe(ctx, &p)) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor& q = ctx.input(0);
    const Dims out_dims = q.rank() == 4 ? Dims{p.batch, p.q_heads, p.q_len, p.v_head}
                                        : Dims{p.batch, p.q_len, p.q_heads * p.v_head};
    Tensor y = ctx.allocate_output(0, DType::F32, out_dims);
    p.y = y.data<float>();
    if (q.rank() == 4) {
      p.y_ss = p.v_head;
      p.y_sh = p.q_len * p.v_head;
      p.y_sb = p.q_heads * p.y_sh;
    } else {
      p.y_sh = p.v_head;
      p.y_ss = p.q_heads * p.v_head;
      p.y_sb = p.q_len * p.y_ss;
    }
    flash_attention(p);
    ctx.set_output(0, std::move(y));
  }

 private:
  // Fills p from the inputs; false when the flash kernel does not take them.
  static bool describe(const ops::KernelContext& ctx, AttentionProblem* p) {
    for (size_t i = 0; i < 3; ++i)
      if (!ctx.has_input(i) || !ctx.value(i).is_tensor() || ctx.input(i).dtype() != DType::F32)
        return false;
    const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
    if (q.rank() != k.rank() || q.rank() != v.rank()) return false;
    const int64_t qh = ctx.attr_int("q_num_heads", 0), kvh = ctx.attr_int("kv_num_heads", 0);
    HeadView vq, vk, vv;
    if (!head_view(q, qh, &vq) || !head_view(k, kvh, &vk) || !head_view(v, kvh, &vv)) return false;
    if (vk.batch != vq.batch || vv.batch != vq.batch || vk.heads != vv.heads || vk.seq != vv.seq ||
        vk.size != vq.size || vk.heads <= 0 || vq.heads % vk.heads != 0)
      return false;
    if (vq.batch == 0 || vq.heads == 0 || vq.seq == 0 || vk.seq == 0 || vq.size == 0 ||
        vv.size == 0)
      return false;  // empty: nothing to gain, the reference kernel handles the edge cases
    p->batch = vq.batch;
    p->q_heads = vq.heads;
    p->kv_heads = vk.heads;
    p->q_len = vq.seq;
    p->kv_len = vk.seq;
    p->head = vq.size;
    p->v_head = vv.size;
    p->q = q.data<float>();
    p->q_sb = vq.sb, p->q_sh = vq.sh, p->q_ss = vq.ss;
    p->k = k.data<float>();
    p->k_sb = vk.sb, p->k_sh = vk.sh, p->k_ss = vk.ss;
    p->v = v.data<float>();
    p->v_sb = vv.sb, p->v_sh = vv.sh, p->v_ss = vv.ss;
    p->scale = ctx.node().has_attr("scale") ? ctx.attr_float("scale", 1.0f)
                                            : 1.0f / std::sqrt(static_cast<float>(p->head));
    p->causal = ctx.attr_int("is_causal", 0) != 0;
    if (ctx.has_input(3)) return describe_mask(ctx, ctx.input(3), p);
    return true;
  }

  static bool describe_mask(const ops::KernelContext& ctx, const Tensor& m, AttentionProblem* p) {
    if (m.dtype() != DType::Bool && m.dtype() != DType::F32) return false;
    if (m.rank() < 1 || m.rank() > 4) return false;
    const int64_t L = p->kv_len, lm = m.dim(-1);
    if (lm == L) {
      p->mask_width = L;
    } else if (lm == 1 && ctx.opset() < 24) {
      p->mask_width = L;  // broadcast along the keys
    } else if (lm < L && ctx.opset() >= 24) {
      p->mask_width = lm;  // keys past the mask are masked
    } else {
      return false;
    }
    // Element strides of the mask, as 4-D, with 0 along broadcast axes.
    const int64_t target[4] = {p->batch, p->q_heads, p->q_len, lm};
    int64_t strides[4] = {0, 0, 0, 0};
    int64_t stride = 1;
    for (int a = 3; a >= 0; --a) {
      const int64_t ma = a - (4 - static_cast<int>(m.rank()));
      const int64_t d = ma >= 0 ? m.dim(ma) : 1;
      if (d != target[a] && d != 1) return false;
      strides[a] = d == 1 ? 0 : stride;
      stride *= d;
    }
    p->mask = m.raw();
    p->mask_is_bool = m.dtype() == DType::Bool;
    p->m_sb = strides[0], p->m_sh = strides[1], p->m_si = strides[2], p->m_sj = strides[3];
    return true;
  }
};

std::unique_ptr<ops::Kernel> prepare_attention(const PrepareContext& ctx) {
  const ir::Node& n = ctx.node;
  // Past caches and nonpad_kv_seqlen, present/qk outputs: reference only.
  for (size_t i = 4; i < n.inputs.size(); ++i)
    if (has_input(n, i)) return nullptr;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (has_output(n, i)) return nullptr;
  if (n.attr_float("softcap", 0.0f) != 0.0f) return nullptr;
  if (n.has_attr("softmax_precision") &&
      n.attr_int("softmax_precision", 0) != static_cast<int64_t>(DType::F32))
    return nullptr;
  for (size_t i = 0; i < 3; ++i)
    if (!input_may_be(ctx, i, DType::F32)) return nullptr;
  if (has_input(n, 3) && !input_may_be(ctx, 3, DType::F32) && !input_may_be(ctx, 3, DType::Bool))
    return nullptr;
  return std::make_unique<FlashAttention>();
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Attention", prepare_attention);

}  // namespace kpt::cpu
