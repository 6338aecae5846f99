// DepthToSpace and SpaceToDepth: move blocks between the channel and spatial axes of NCHW.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void depth_to_space(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() == 4, [&] { return "input must be 4-D (NCHW), got " + x.describe(); });
  const int64_t b = ctx.attr_int("blocksize", 0);
  ctx.check(b >= 1, "blocksize must be positive, got " + std::to_string(b));
  const std::string mode = ctx.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") ctx.unsupported("mode '" + mode + "' is not supported");
  const int64_t n = x.dims()[0], c = x.dims()[1], h = x.dims()[2], w = x.dims()[3];
  ctx.check(c % (b * b) == 0,
            [&] { return "channels of " + x.describe() + " are not divisible by blocksize^2"; });
  const int64_t oc = c / (b * b);
  const Dims dims{n, oc, h * b, w * b};
  std::vector<int64_t> offsets = tensor_ops::offset_buffer(x.numel());
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < x.numel(); ++i) {
    tensor_ops::unravel(i, dims, idx);
    const int64_t y = idx[2] / b, bi = idx[2] % b, xx = idx[3] / b, bj = idx[3] % b;
    const int64_t ch = mode == "DCR" ? (bi * b + bj) * oc + idx[1] : idx[1] * b * b + bi * b + bj;
    offsets[static_cast<size_t>(i)] = ((idx[0] * c + ch) * h + y) * w + xx;
  }
  ctx.set_output(0, tensor_ops::take_elements(x, dims, offsets));
}

void space_to_depth(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() == 4, [&] { return "input must be 4-D (NCHW), got " + x.describe(); });
  const int64_t b = ctx.attr_int("blocksize", 0);
  ctx.check(b >= 1, "blocksize must be positive, got " + std::to_string(b));
  const int64_t n = x.dims()[0], c = x.dims()[1], h = x.dims()[2], w = x.dims()[3];
  ctx.check(h % b == 0 && w % b == 0, [&] {
    return "height and width of " + x.describe() + " are not divisible by the blocksize";
  });
  const Dims dims{n, c * b * b, h / b, w / b};
  std::vector<int64_t> offsets = tensor_ops::offset_buffer(x.numel());
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < x.numel(); ++i) {
    tensor_ops::unravel(i, dims, idx);
    const int64_t block = idx[1] / c, ch = idx[1] % c;
    const int64_t y = idx[2] * b + block / b, xx = idx[3] * b + block % b;
    offsets[static_cast<size_t>(i)] = ((idx[0] * c + ch) * h + y) * w + xx;
  }
  ctx.set_output(0, tensor_ops::take_elements(x, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "DepthToSpace", 1, depth_to_space);
KPT_REGISTER_OP("", "SpaceToDepth", 1, space_to_depth);

}  // namespace kpt::ops
