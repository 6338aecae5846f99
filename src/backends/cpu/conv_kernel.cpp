// Fast float32 Conv, com.microsoft FusedConv and kpt Blocked16Conv through oneDNN's
// convolution_forward: weights reordered once into the layout the chosen implementation wants;
// bias, residual (Z: a binary-add or sum post-op) and activation (an eltwise post-op) applied
// in the same pass over the output. 1-D convolutions run as 2-D ones of height 1. One oneDNN
// primitive per input shape. Precision BF16: bf16 activations and weights, fp32 accumulation
// and output.
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "backends/cpu/conv_spec.hpp"
#include "backends/cpu/dnnl_context.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_plan_cache.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::reorder reorder_of(const memory::desc& from, const memory::desc& to) {
  return dnnl::reorder(
      dnnl::reorder::primitive_desc(dnnl_util::engine(), from, dnnl_util::engine(), to));
}

memory::dims to_dnnl(const std::vector<int64_t>& v) {
  return memory::dims(v.begin(), v.end());
}

// The primitive for one input shape and the buffers around it.
struct Plan {
  dnnl::convolution_forward conv;
  memory::desc user_src, user_dst, src, dst, weights, scratchpad;
  std::shared_ptr<memory> packed_weights;
  bool reorder_src = false, reorder_dst = false;
  bool z_binary = false;  // Z is a binary-add post-op argument (else copied into dst for sum)
  dnnl::reorder to_src, to_dst, z_to_dst;
  Dims out_dims;
  size_t scratchpad_bytes = 0;
};

class DnnlConv : public ops::Kernel {
 public:
  // blocked: X, Z and Y are kpt blocked tensors (N x C/16 x H x W x 16), else N x C x ...
  // store: where packed weights are looked up before reordering and recorded after (keys start
  // with `packed_prefix`); it outlives the kernel (both belong to the session).
  DnnlConv(ConvSpec spec, Tensor w, Tensor b, bool has_z, bool bf16, bool blocked,
           PackedWeights* store, std::string packed_prefix)
      : spec_(std::move(spec)),
        w_(std::move(w)),
        b_(std::move(b)),
        has_z_(has_z),
        bf16_(bf16),
        blocked_(blocked),
        store_(store),
        packed_prefix_(std::move(packed_prefix)) {}

  std::string name() const override { return bf16_ ? "dnnl.conv(bf16)" : "dnnl.conv(fp32)"; }

  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Dims xd = blocked_ ? plain_of_blocked(x.dims()) : x.dims();
    if (x.dtype() != DType::F32 || xd.size() != static_cast<size_t>(spec_.spatial) + 2 ||
        xd[1] != w_.dim(1) * spec_.group || x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    const auto plan = plan_for(xd);
    if (plan == nullptr) {
      ops::run_reference(ctx);
      return;
    }
    const Tensor* z = has_z_ && ctx.has_input(3) ? &ctx.input(3) : nullptr;
    if (z && (z->dtype() != DType::F32 || z->dims() != plan->out_dims)) {
      ops::run_reference(ctx);
      return;
    }
    Tensor y = ctx.allocate_output(0, DType::F32, plan->out_dims);
    dnnl::engine& eng = dnnl_util::engine();
    dnnl::stream& s = dnnl_util::stream();
    memory user_src(plan->user_src, eng, const_cast<void*>(x.raw()));
    memory user_dst(plan->user_dst, eng, y.raw());
    memory src = user_src, dst = user_dst;
    if (plan->reorder_src) {
      src = memory(plan->src, eng,
                   dnnl_util::scratch(dnnl_util::Scratch::Source, plan->src.get_size()));
      plan->to_src.execute(s, user_src, src);
    }
    if (plan->reorder_dst)
      dst = memory(plan->dst, eng,
                   dnnl_util::scratch(dnnl_util::Scratch::Destination, plan->dst.get_size()));
    if (z && !plan->z_binary) {
      // The sum post-op adds what dst holds before the convolution writes it.
      memory user_z(plan->user_dst, eng, const_cast<void*>(z->raw()));
      if (plan->reorder_dst)
        plan->z_to_dst.execute(s, user_z, dst);
      else if (y.raw() != z->raw())  // a memory plan may already have put Z in place
        copy_parallel(y.raw(), z->raw(), static_cast<size_t>(z->numel()) * sizeof(float));
    }
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, *plan->packed_weights}, {DNNL_ARG_DST, dst}};
    if (z && plan->z_binary)
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
          memory(plan->user_dst, eng, const_cast<void*>(z->raw()));
    if (b_.defined()) args[DNNL_ARG_BIAS] = memory(bias_md(), eng, const_cast<void*>(b_.raw()));
    if (plan->scratchpad_bytes > 0)
      args[DNNL_ARG_SCRATCHPAD] =
          memory(plan->scratchpad, eng,
                 dnnl_util::scratch(dnnl_util::Scratch::Scratchpad, plan->scratchpad_bytes));
    plan->conv.execute(s, args);
    if (plan->reorder_dst) plan->to_dst.execute(s, dst, user_dst);
    s.wait();
    ctx.set_output(0, y);
  }

  // Builds the plan for a shape known at load, so the weights are packed before the first run;
  // a static shape is the model's own, so its plan is pinned like a shape bucket's.
  void warm(const Dims& x) const {
    ShapePlanPolicy policy = shape_plan_policy();
    policy.pin = true;
    const ShapePlanScope scope(policy);
    plan_for(blocked_ ? plain_of_blocked(x) : x);
  }

  // N x C/16 x H x W x 16 -> N x C x H x W; empty when `d` is not blocked.
  static Dims plain_of_blocked(const Dims& d) {
    if (d.size() != 5 || d[4] != 16) return {};
    return {d[0], d[1] * 16, d[2], d[3]};
  }

 private:
  static void copy_parallel(void* dst, const void* src, size_t bytes) {
    const int64_t chunks = static_cast<int64_t>((bytes + 65535) / 65536);
    parallel_for(chunks, 8, [&](int64_t b, int64_t e) {
      const size_t lo = static_cast<size_t>(b) * 65536;
      const size_t hi = std::min(bytes, static_cast<size_t>(e) * 65536);
      std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
    });
  }

  memory::desc bias_md() const { return memory::desc({w_.dim(0)}, dt::f32, tag::x); }

  void append_activation(dnnl::post_ops& ops) const {
    switch (spec_.activation) {
      case Activation::None:
        break;
      case Activation::Relu:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
        break;
      case Activation::LeakyRelu:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, spec_.alpha, 0.f);
        break;
      case Activation::Sigmoid:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
        break;
      case Activation::Tanh:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_tanh, 0.f, 0.f);
        break;
      case Activation::Clip:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip_v2, spec_.alpha, spec_.beta);
        break;
    }
  }

  // Winograd (oneDNN offers it for fp32 3x3 stride-1 convolutions) halves the time of
  // ResNet's 3x3 layers; its rounding differs from direct convolution by ~1e-6 relative, so it
  // is kept to layers wide enough to matter.
  bool winograd_pays(int64_t c, int64_t m) const {
    if (bf16_ || spec_.group != 1 || c < 64 || m < 64 || c % 16 != 0 || m % 16 != 0) return false;
    for (size_t i = 0; i < spec_.kernel.size(); ++i) {
      if (spec_.kernel[i] != 3 || spec_.strides[i] != 1 || spec_.dilations[i] != 1) return false;
    }
    return spec_.spatial == 2;
  }

  // Spatial dims as oneDNN sees them: 1-D becomes height 1.
  std::vector<int64_t> as_2d(std::vector<int64_t> v, int64_t fill) const {
    if (spec_.spatial == 1) v.insert(v.begin(), fill);
    return v;
  }

  std::shared_ptr<const Plan> plan_for(const Dims& x) const {
    return plans_.get(x, [&] { return make_plan(x); });
  }

  std::shared_ptr<const Plan> make_plan(const Dims& x) const {
    const Dims in(x.begin() + 2, x.end());
    auto geo = conv_geometry(spec_, in);
    if (!geo) return nullptr;
    auto plan = std::make_shared<Plan>();
    plan->out_dims = {x[0], w_.dim(0)};
    plan->out_dims.insert(plan->out_dims.end(), geo->out.begin(), geo->out.end());
    const int64_t g = spec_.group, m = w_.dim(0), c = x[1];
    const auto in2 = as_2d(in, 1), out2 = as_2d(geo->out, 1);
    const auto k2 = as_2d(spec_.kernel, 1);
    memory::dims src_dims = {x[0], c, in2[0], in2[1]};
    memory::dims dst_dims = {x[0], m, out2[0], out2[1]};
    memory::dims w_dims =
        g == 1 ? memory::dims{m, c, k2[0], k2[1]} : memory::dims{g, m / g, c / g, k2[0], k2[1]};
    const memory::dims strides = to_dnnl(as_2d(spec_.strides, 1));
    std::vector<int64_t> dil = as_2d(spec_.dilations, 1);
    for (auto& d : dil) d -= 1;
    const memory::dims pb = to_dnnl(as_2d(geo->pads_begin, 0));
    const memory::dims pe = to_dnnl(as_2d(geo->pads_end, 0));

    const tag user_tag = blocked_ ? tag::nChw16c : tag::nchw;
    plan->user_src = memory::desc(src_dims, dt::f32, user_tag);
    plan->user_dst = memory::desc(dst_dims, dt::f32, user_tag);
    if (blocked_) plan->out_dims = {x[0], m / 16, out2[0], out2[1], 16};
    const dt data_t = bf16_ ? dt::bf16 : dt::f32;
    // Measured on ResNet-50 (one core): oneDNN's blocked layout with a reorder on each side
    // beats plain NCHW (a GEMM-based implementation) by ~30% and NHWC by ~8%. Tensors already
    // blocked stay blocked: left free, oneDNN picks NHWC for some shapes, costing two reorders.
    auto act_md = [&](const memory::dims& d, dt type, tag t) { return memory::desc(d, type, t); };
    tag act_tag = blocked_ ? tag::nChw16c : tag::any;
    memory::desc src_md = act_md(src_dims, data_t, act_tag);
    memory::desc dst_md = act_md(dst_dims, dt::f32, act_tag);
    const memory::desc w_md(w_dims, data_t, tag::any);
    const memory::desc b_md = b_.defined() ? bias_md() : memory::desc();

    // Z as a binary-add post-op reads it where it lies; the sum post-op (the fallback where
    // binary is not implemented) needs it copied into dst first.
    auto make_attr = [&](bool z_binary) {
      dnnl::post_ops ops;
      if (has_z_ && z_binary) ops.append_binary(dnnl::algorithm::binary_add, plan->user_dst);
      if (has_z_ && !z_binary) ops.append_sum(1.f);
      append_activation(ops);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      return attr;
    };
    dnnl::primitive_attr attr;
    dnnl::engine& eng = dnnl_util::engine();
    auto make_pd = [&](dnnl::algorithm alg) {
      auto d =
          b_.defined()
              ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md,
                                                w_md, b_md, dst_md, strides, to_dnnl(dil), pb, pe)
              : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md,
                                                w_md, dst_md, strides, to_dnnl(dil), pb, pe);
      return dnnl::convolution_forward::primitive_desc(d, attr, eng);
    };
    dnnl::convolution_forward::primitive_desc pd;
    bool have = false;
    auto attempt = [&](dnnl::algorithm alg) {
      if (!have) {
        try {
          pd = make_pd(alg);
          have = true;
        } catch (const dnnl::error&) {
        }
      }
    };
    // Binary Z only where dst needs no reorder: it is read in the user's layout.
    for (bool z_binary : {true, false}) {
      if (z_binary && (!has_z_ || !blocked_)) continue;
      attr = make_attr(z_binary);
      if (winograd_pays(c, m)) attempt(dnnl::algorithm::convolution_winograd);
      attempt(dnnl::algorithm::convolution_direct);
      plan->z_binary = have && z_binary && pd.dst_desc() == plan->user_dst;
      if (have && z_binary && !plan->z_binary) have = false;
      if (have) break;
    }
    if (!have && act_tag != tag::any) {
      src_md = act_md(src_dims, data_t, tag::any);
      dst_md = act_md(dst_dims, dt::f32, tag::any);
      attr = make_attr(false);
      attempt(dnnl::algorithm::convolution_direct);
    }
    if (!have) return nullptr;  // no implementation for this case: the reference kernel runs
    plan->conv = dnnl::convolution_forward(pd);
    plan->src = pd.src_desc();
    plan->dst = pd.dst_desc();
    plan->weights = pd.weights_desc();
    plan->scratchpad = pd.scratchpad_desc();
    plan->scratchpad_bytes = plan->scratchpad.get_size();
    plan->reorder_src = plan->src != plan->user_src;
    plan->reorder_dst = plan->dst != plan->user_dst;
    if (plan->reorder_src) plan->to_src = reorder_of(plan->user_src, plan->src);
    if (plan->reorder_dst) {
      plan->to_dst = reorder_of(plan->dst, plan->user_dst);
      if (has_z_) plan->z_to_dst = reorder_of(plan->user_dst, plan->dst);
    }
    plan->packed_weights = packed(plan->weights, w_dims);
    return plan;
  }

  // The weights in `want`'s layout, reordered once per distinct layout.
  std::shared_ptr<memory> packed(const memory::desc& want, const memory::dims& w_dims) const {
    for (const auto& [md, mem] : packed_) {
      if (md == want) return mem;
    }
    const std::string key = store_ ? packed_key(packed_prefix_, "conv.weights", want) : "";
    if (store_) {
      if (auto bytes = store_->find(key)) {
        if (auto mem = memory_over(*bytes, want)) {
          // The memory is a view; the keeper rides along in the deleter.
          auto view = std::shared_ptr<memory>(new memory(*mem),
                                              [keep = bytes->keeper](memory* m) { delete m; });
          packed_.emplace_back(want, view);
          return view;
        }
      }
    }
    dnnl::engine& eng = dnnl_util::engine();
    const memory::desc user(w_dims, dt::f32, w_dims.size() == 4 ? tag::oihw : tag::goihw);
    memory src(user, eng, const_cast<void*>(w_.raw()));
    auto dst = std::make_shared<memory>(want, eng);
    dnnl::stream s(eng);
    dnnl::reorder(src, *dst).execute(s, src, *dst);
    s.wait();
    packed_.emplace_back(want, dst);
    if (store_) store_->store(key, bytes_of(*dst));
    return dst;
  }

  ConvSpec spec_;
  Tensor w_, b_;
  bool has_z_, bf16_, blocked_;
  PackedWeights* store_;
  std::string packed_prefix_;
  ShapePlanCache<Dims, Plan> plans_;  // by plain input dims
  // Weights per layout; only make_plan touches it, under plans_'s lock.
  mutable std::vector<std::pair<memory::desc, std::shared_ptr<memory>>> packed_;
};

bool is_f32_tensor(const ir::Type* t) {
  return t != nullptr && t->kind == ir::Type::Kind::Tensor && t->elem == DType::F32;
}

std::unique_ptr<ops::Kernel> prepare_conv(const PrepareContext& ctx) {
  const ir::Node& n = ctx.node;
  const bool blocked = n.domain == "kpt";
  const bool fused = n.domain == "com.microsoft" || blocked;
  if (n.inputs.size() < 2 || n.inputs.size() > (fused ? 4u : 3u) || n.outputs.size() != 1)
    return nullptr;
  if (!is_f32_tensor(ctx.input_types[0])) return nullptr;
  const Tensor* w = ctx.constants[1];
  if (!w || w->dtype() != DType::F32) return nullptr;
  const auto& xs = ctx.input_types[0]->shape;
  if (xs && xs->size() != static_cast<size_t>(w->rank()) + (blocked ? 1 : 0)) return nullptr;
  if (blocked && w->rank() != 4) return nullptr;
  auto spec = read_conv_spec(n, w->dims());
  if (!spec) return nullptr;
  Tensor b;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* bt = ctx.constants[2];
    if (!bt || bt->dtype() != DType::F32 || bt->numel() != w->dim(0)) return nullptr;
    b = *bt;
  }
  const bool has_z = fused && n.inputs.size() > 3 && !n.inputs[3].empty();
  auto kernel =
      std::make_unique<DnnlConv>(*spec, *w, b, has_z, ctx.precision == Precision::BF16, blocked,
                                 ctx.packed, packed_key_prefix(n, ctx.precision));
  if (xs && !xs->empty()) {
    // Only the batch may be unknown: weights are packed now, for batch 1, so that an engine file
    // carries them (the layout oneDNN picks rarely depends on the batch; where it does, the
    // first run at that batch packs its own).
    Dims dims;
    for (size_t i = 0; i < xs->size(); ++i) {
      const auto& d = (*xs)[i];
      if (!d.known() && i != 0) return kernel;
      dims.push_back(d.known() ? d.value : 1);
    }
    kernel->warm(dims);
  }
  return kernel;
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "Conv", prepare_conv);
KPT_REGISTER_CPU_KERNEL("com.microsoft", "FusedConv", prepare_conv);
KPT_REGISTER_CPU_KERNEL("kpt", "Blocked16Conv", prepare_conv);

}  // namespace kpt::cpu
