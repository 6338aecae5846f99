// Col2Im: sums sliding-window columns back into an N-D image.
#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

void col2im(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  require_float(ctx, x, "Col2Im input");
  const std::vector<int64_t> image = ctx.input(1).to_i64_vector();
  const std::vector<int64_t> block = ctx.input(2).to_i64_vector();
  const size_t r = image.size();
  ctx.check(r >= 1 && block.size() == r, "image_shape and block_shape must have the same length");
  ctx.check(x.rank() == 3,
            [&] { return "input must be [N, C*prod(block_shape), L], got " + x.describe(); });
  const auto strides = ctx.attr_ints("strides", std::vector<int64_t>(r, 1));
  const auto dil = ctx.attr_ints("dilations", std::vector<int64_t>(r, 1));
  const auto pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  ctx.check(strides.size() == r && dil.size() == r && pads.size() == 2 * r,
            "strides, dilations and pads must match image_shape");
  const int64_t k_sp = product(block);
  ctx.check(k_sp > 0 && x.dim(1) % k_sp == 0, "input dim 1 must be divisible by prod(block_shape)");
  const int64_t c = x.dim(1) / k_sp, n = x.dim(0);
  Dims blocks(r);
  for (size_t d = 0; d < r; ++d) {
    ctx.check(strides[d] >= 1 && dil[d] >= 1 && image[d] >= 0, "bad strides/dilations/image_shape");
    blocks[d] = (image[d] + pads[d] + pads[d + r] - (dil[d] * (block[d] - 1) + 1)) / strides[d] + 1;
  }
  const int64_t l = product(blocks);
  ctx.check(x.dim(2) == l, "input dim 2 is " + std::to_string(x.dim(2)) +
                               " but the image and block shapes give " + std::to_string(l) +
                               " blocks");
  const int64_t img_sp = product(image);
  Dims y_dims = {n, c};
  y_dims.insert(y_dims.end(), image.begin(), image.end());
  check_output_size(ctx, y_dims);
  std::vector<double> y(static_cast<size_t>(element_count(y_dims)), 0.0);
  const std::vector<double> xv = to_f64(x);
  std::vector<int64_t> kc, bc;
  for (int64_t k = 0; k < k_sp; ++k) {
    unravel(k, block, kc);
    for (int64_t p = 0; p < l; ++p) {
      unravel(p, blocks, bc);
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < r && inside; ++d) {
        const int64_t pos = bc[d] * strides[d] - pads[d] + kc[d] * dil[d];
        inside = pos >= 0 && pos < image[d];
        off = off * image[d] + pos;
      }
      if (!inside) continue;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch)
          y[static_cast<size_t>((b * c + ch) * img_sp + off)] +=
              xv[static_cast<size_t>((b * x.dim(1) + ch * k_sp + k) * l + p)];
    }
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "Col2Im", 1, col2im);

}  // namespace kpt::ops::vision
