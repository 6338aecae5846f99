// Windowed pools: MaxPool (with Indices), AveragePool and LpPool over N-D inputs.
#include <cmath>
#include <limits>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

enum class Kind { Max, Average, Lp };

void pool(KernelContext& ctx, Kind kind) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() >= 3, [&] { return "input must be N x C x spatial..., got " + x.describe(); });
  if (kind != Kind::Max || !(x.dtype() == DType::I8 || x.dtype() == DType::U8))
    require_float(ctx, x, ctx.node().op_type + " input");
  ctx.check(ctx.node().has_attr("kernel_shape"), "kernel_shape attribute is required");
  const bool ceil_mode = ctx.attr_int("ceil_mode", 0) != 0;
  Dims in(x.dims().begin() + 2, x.dims().end());
  const Window win = make_window(ctx, in, ctx.attr_ints("kernel_shape"), ceil_mode);
  const size_t r = in.size();
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  const double p = kind != Kind::Lp   ? 2.0
                   : ctx.opset() >= 2 ? static_cast<double>(ctx.attr_int("p", 2))
                                      : static_cast<double>(ctx.attr_float("p", 2.0f));
  const int64_t storage_order = ctx.attr_int("storage_order", 0);
  ctx.check(storage_order == 0 || storage_order == 1, "storage_order must be 0 or 1");
  const int64_t nc = x.dim(0) * x.dim(1);
  const int64_t in_sp = product(in), out_sp = product(win.out), k_sp = product(win.kernel);
  const std::vector<double> xv = to_f64(x);
  Dims y_dims = {x.dim(0), x.dim(1)};
  y_dims.insert(y_dims.end(), win.out.begin(), win.out.end());
  std::vector<double> y(static_cast<size_t>(nc * out_sp));
  std::vector<int64_t> idx(kind == Kind::Max ? y.size() : 0);
  std::vector<int64_t> oc, kc;
  std::vector<int64_t> col_stride(r, 1);
  for (size_t d = 1; d < r; ++d) col_stride[d] = col_stride[d - 1] * in[d - 1];
  for (int64_t o = 0; o < out_sp; ++o) {
    unravel(o, win.out, oc);
    std::vector<std::pair<int64_t, int64_t>> taps;  // (row-major, column-major) offsets
    int64_t padded_count = 0;
    for (int64_t k = 0; k < k_sp; ++k) {
      unravel(k, win.kernel, kc);
      int64_t off = 0, col = 0;
      bool inside = true, in_padded = true;
      for (size_t d = 0; d < r; ++d) {
        const int64_t pos = oc[d] * win.strides[d] - win.pads[d] + kc[d] * win.dilations[d];
        if (pos < 0 || pos >= in[d]) inside = false;
        if (pos < -win.pads[d] || pos >= in[d] + win.pads[d + r]) in_padded = false;
        off = off * in[d] + pos;
        col += pos * col_stride[d];
      }
      if (in_padded) ++padded_count;
      if (inside) taps.emplace_back(off, col);
    }
    for (int64_t b = 0; b < nc; ++b) {
      const double* xb = xv.data() + b * in_sp;
      const size_t out_i = static_cast<size_t>(b * out_sp + o);
      if (kind == Kind::Max) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t best_i = -1;
        for (const auto& [off, col] : taps) {
          if (best_i < 0 || xb[off] > best) {
            best = xb[off];
            best_i = storage_order == 0 ? off : col;
          }
        }
        y[out_i] = best;
        idx[out_i] = best_i < 0 ? -1 : b * in_sp + best_i;
      } else if (kind == Kind::Average) {
        double s = 0;
        for (const auto& t : taps) s += xb[t.first];
        const int64_t count = include_pad ? padded_count : static_cast<int64_t>(taps.size());
        y[out_i] = count == 0 ? 0.0 : s / static_cast<double>(count);
      } else {
        double s = 0;
        for (const auto& t : taps) s += std::pow(std::fabs(xb[t.first]), p);
        y[out_i] = std::pow(s, 1.0 / p);
      }
    }
  }
  ctx.set_output(0, from_f64(y, y_dims, x.dtype()));
  if (kind == Kind::Max && ctx.wants_output(1)) {
    Tensor it(DType::I64, y_dims);
    for (size_t i = 0; i < idx.size(); ++i) it.data<int64_t>()[i] = idx[i];
    ctx.set_output(1, it);
  }
}

void max_pool(KernelContext& ctx) {
  pool(ctx, Kind::Max);
}
void average_pool(KernelContext& ctx) {
  pool(ctx, Kind::Average);
}
void lp_pool(KernelContext& ctx) {
  pool(ctx, Kind::Lp);
}

}  // namespace

KPT_REGISTER_OP("", "MaxPool", 1, max_pool);
KPT_REGISTER_OP("", "AveragePool", 1, average_pool);
KPT_REGISTER_OP("", "LpPool", 1, lp_pool);

}  // namespace kpt::ops::vision
