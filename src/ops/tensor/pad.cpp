// Pad (constant/reflect/edge/wrap; negative pads crop) and CenterCropPad.
#include <algorithm>
#include <cstdlib>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

int64_t floor_mod(int64_t a, int64_t n) {
  return ((a % n) + n) % n;
}

// Source index along one axis of size n for padded position i (already shifted by the begin
// pad), or -1 for the constant value.
int64_t source_index(int64_t i, int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "constant" || n == 0) return -1;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") return floor_mod(i, n);
  if (n == 1) return 0;  // reflect
  const int64_t period = 2 * (n - 1);
  const int64_t m = floor_mod(i, period);
  return m < n ? m : period - m;
}

void pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const std::string mode = ctx.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.unsupported("pad mode '" + mode + "' is not supported");
  std::vector<int64_t> pads;
  Tensor fill;
  std::vector<int64_t> axes;
  if (ctx.opset() >= 11) {
    pads = ctx.input(1).to_i64_vector();
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
      fill = ctx.input(2);
      ctx.check(fill.dtype() == x.dtype(), [&] {
        return "constant_value " + fill.describe() + " must have the element type of " +
               x.describe();
      });
    }
    if (ctx.has_input(3)) axes = ctx.input(3).to_i64_vector();
  } else {
    pads = ctx.attr_ints(ctx.opset() >= 2 ? "pads" : "paddings");
    if (x.dtype() != DType::String)
      fill =
          cast_tensor(Tensor::scalar<float>(DType::F32, ctx.attr_float("value", 0.0f)), x.dtype());
  }
  if (axes.empty())
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  axes = normalize_axes(ctx, axes, rank);
  const size_t na = axes.size();
  ctx.check(pads.size() == 2 * na, [&] {
    return "pads " + dims_to_string(pads) + " must have " + std::to_string(2 * na) +
           " entries for input " + x.describe();
  });
  // Negative pads crop first; the remaining (cropped) extent is what gets padded, so reflect,
  // edge and wrap see only the kept elements.
  std::vector<int64_t> pad_begin(static_cast<size_t>(rank), 0), crop_begin(pad_begin);
  Dims kept = x.dims();
  Dims dims = x.dims();
  for (size_t i = 0; i < na; ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    const int64_t pb = pads[i], pe = pads[i + na];
    ctx.check(std::abs(pb) < (int64_t{1} << 40) && std::abs(pe) < (int64_t{1} << 40),
              [&] { return "pads " + dims_to_string(pads) + " are implausibly large"; });
    crop_begin[a] = std::max<int64_t>(0, -pb);
    pad_begin[a] = std::max<int64_t>(0, pb);
    kept[a] = x.dims()[a] - crop_begin[a] - std::max<int64_t>(0, -pe);
    dims[a] = x.dims()[a] + pb + pe;
    ctx.check(kept[a] >= 0 && dims[a] >= 0, [&] {
      return "pads " + dims_to_string(pads) + " crop axis " + std::to_string(a) + " of " +
             x.describe() + " below size 0";
    });
    if (mode != "constant" && dims[a] > 0)
      ctx.check(kept[a] > 0, "cannot pad empty axis " + std::to_string(a) + " in mode " + mode);
  }
  const int64_t n = element_count(dims);
  const auto strides = strides_of(x.dims());
  std::vector<int64_t> offsets = offset_buffer(n);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) {
    unravel(i, dims, idx);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size() && off >= 0; ++d) {
      const int64_t s = source_index(idx[d] - pad_begin[d], kept[d], mode);
      off = s < 0 ? -1 : off + (s + crop_begin[d]) * strides[d];
    }
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(x, dims, offsets, fill.defined() ? &fill : nullptr));
}

void center_crop_pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const std::vector<int64_t> shape = ctx.input(1).to_i64_vector();
  std::vector<int64_t> axes = ctx.attr_ints("axes");
  if (!ctx.node().has_attr("axes"))
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  axes = normalize_axes(ctx, axes, rank);
  ctx.check(shape.size() == axes.size(), [&] {
    return "shape " + dims_to_string(shape) + " must have one entry per axis in " +
           dims_to_string(axes);
  });
  // shift[d]: source index = output index + shift[d].
  std::vector<int64_t> shift(static_cast<size_t>(rank), 0);
  Dims dims = x.dims();
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    ctx.check(shape[i] >= 0,
              [&] { return "shape " + dims_to_string(shape) + " must be non-negative"; });
    const int64_t diff = x.dims()[a] - shape[i];
    shift[a] = diff >= 0 ? diff / 2 : -((-diff) / 2);
    dims[a] = shape[i];
  }
  const int64_t n = element_count(dims);
  const auto strides = strides_of(x.dims());
  std::vector<int64_t> offsets = offset_buffer(n);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) {
    unravel(i, dims, idx);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size() && off >= 0; ++d) {
      const int64_t s = idx[d] + shift[d];
      off = (s < 0 || s >= x.dims()[d]) ? -1 : off + s * strides[d];
    }
    offsets[static_cast<size_t>(i)] = off;
  }
  ctx.set_output(0, take_elements(x, dims, offsets));
}

}  // namespace

KPT_REGISTER_OP("", "Pad", 1, pad);
KPT_REGISTER_OP("", "CenterCropPad", 18, center_crop_pad);

}  // namespace kpt::ops
