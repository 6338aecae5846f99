// The channel-blocked layout of convolution chains (kpt domain, inserted by the
// conv_blocked_layout pass): a float N x C x H x W tensor with C a multiple of 16 held as
// N x C/16 x H x W x 16, the layout oneDNN's convolutions compute in. Keeping it between
// consecutive convolutions saves a layout conversion on each side of each one.
//   ToBlocked16(X) -> Xb, FromBlocked16(Xb) -> X,
//   Blocked16Conv(Xb, W, B?, Zb?) -> Yb: FusedConv (same attributes) on blocked X, Z and Y.
// These reference kernels convert, run FusedConv's reference computation, and convert back.
#include "analysis/infer_util.hpp"
#include "ops/vision/fused_conv.hpp"
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

constexpr int64_t kBlock = 16;

Tensor to_blocked(const KernelContext& ctx, const Tensor& x) {
  ctx.check(x.rank() == 4 && x.dim(1) % kBlock == 0,
            [&] { return "expected N x C x H x W with C a multiple of 16, got " + x.describe(); });
  const int64_t n = x.dim(0), cb = x.dim(1) / kBlock, hw = x.dim(2) * x.dim(3);
  Tensor y = ctx.allocate_output(0, x.dtype(), {n, cb, x.dim(2), x.dim(3), kBlock});
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t i = 0; i < n * cb; ++i)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < kBlock; ++c)
        std::memcpy(dst + ((i * hw + p) * kBlock + c) * es, src + ((i * kBlock + c) * hw + p) * es,
                    es);
  return y;
}

// As output 0 of the node when `as_output`, else a temporary.
Tensor from_blocked(const KernelContext& ctx, const Tensor& x, bool as_output) {
  ctx.check(x.rank() == 5 && x.dim(4) == kBlock,
            [&] { return "expected a blocked N x C/16 x H x W x 16 tensor, got " + x.describe(); });
  const int64_t n = x.dim(0), cb = x.dim(1), hw = x.dim(2) * x.dim(3);
  const Dims dims = {n, cb * kBlock, x.dim(2), x.dim(3)};
  Tensor y =
      as_output ? ctx.allocate_output(0, x.dtype(), dims) : Tensor::uninitialized(x.dtype(), dims);
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t i = 0; i < n * cb; ++i)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t c = 0; c < kBlock; ++c)
        std::memcpy(dst + ((i * kBlock + c) * hw + p) * es, src + ((i * hw + p) * kBlock + c) * es,
                    es);
  return y;
}

void to_blocked16(KernelContext& ctx) {
  ctx.set_output(0, to_blocked(ctx, ctx.input(0)));
}

void from_blocked16(KernelContext& ctx) {
  ctx.set_output(0, from_blocked(ctx, ctx.input(0), true));
}

void blocked16_conv(KernelContext& ctx) {
  const Tensor x = from_blocked(ctx, ctx.input(0), false);
  const Tensor z = ctx.has_input(3) ? from_blocked(ctx, ctx.input(3), false) : Tensor();
  const Tensor y = fused_conv_nchw(ctx, x, ctx.input(1), ctx.has_input(2) ? &ctx.input(2) : nullptr,
                                   z.defined() ? &z : nullptr);
  ctx.set_output(0, to_blocked(ctx, y));
}

// NCHW shape <-> blocked shape; nullopt where the channel count is unknown or not a multiple.
std::optional<ir::Shape> blocked_shape(const ir::Shape& s) {
  if (s.size() != 4 || !s[1].known() || s[1].value % kBlock != 0) return std::nullopt;
  return ir::Shape{s[0], ir::Dim::of(s[1].value / kBlock), s[2], s[3], ir::Dim::of(kBlock)};
}
std::optional<ir::Shape> plain_shape(const ir::Shape& s) {
  if (s.size() != 5 || !s[1].known()) return std::nullopt;
  return ir::Shape{s[0], ir::Dim::of(s[1].value * kBlock), s[2], s[3]};
}

void infer_to_blocked16(InferContext& ctx) {
  auto s = analysis::input_shape(ctx, 0);
  analysis::set_output(ctx, 0, analysis::input_dtype(ctx, 0), s ? blocked_shape(*s) : std::nullopt);
}

void infer_from_blocked16(InferContext& ctx) {
  auto s = analysis::input_shape(ctx, 0);
  analysis::set_output(ctx, 0, analysis::input_dtype(ctx, 0), s ? plain_shape(*s) : std::nullopt);
}

// Conv's inference on the plain shapes, then blocked.
void infer_blocked16_conv(InferContext& ctx) {
  const DType dtype = analysis::input_dtype(ctx, 0);
  auto s = analysis::input_shape(ctx, 0);
  const InferFn conv = Registry::instance().find_infer("", "Conv", 11);
  std::optional<ir::Shape> plain = s ? plain_shape(*s) : std::nullopt;
  if (!plain || conv == nullptr) {
    analysis::set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const ir::Type x = ir::Type::tensor(dtype, plain);
  InferContext inner{ctx.node, ctx.inputs, ctx.constants, {ir::Type{}}};
  inner.inputs[0] = &x;
  inner.output_values.resize(1);
  if (inner.inputs.size() > 3) inner.inputs[3] = nullptr;
  conv(inner);
  const auto& out = inner.outputs[0].shape;
  analysis::set_output(ctx, 0, dtype, out ? blocked_shape(*out) : std::nullopt);
}

}  // namespace

KPT_REGISTER_OP("kpt", "ToBlocked16", 1, to_blocked16, infer_to_blocked16);
KPT_REGISTER_OP("kpt", "FromBlocked16", 1, from_blocked16, infer_from_blocked16);
KPT_REGISTER_OP("kpt", "Blocked16Conv", 1, blocked16_conv, infer_blocked16_conv);

}  // namespace kpt::ops::vision
