#pragma once
// Helpers shared by the vision kernels: element access through double (so one loop serves
// every float type and the integer types some pools allow) and the window geometry that
// Conv, ConvTranspose and the pools share.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cast.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::vision {

inline std::vector<double> to_f64(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::F64) {
    if (t.numel() > 0) std::memcpy(v.data(), t.data<double>(), v.size() * sizeof(double));
  } else if (t.dtype() == DType::F32) {
    const float* p = t.data<float>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    for (size_t i = 0; i < v.size(); ++i) v[i] = t.get_f64(static_cast<int64_t>(i));
  }
  return v;
}

// A tensor of `dtype` holding `v` (rounded once from double).
inline Tensor from_f64(const std::vector<double>& v, const Dims& dims, DType dtype) {
  Tensor d(DType::F64, dims);
  if (!v.empty()) std::memcpy(d.data<double>(), v.data(), v.size() * sizeof(double));
  if (dtype == DType::F64) return d;
  return cast_tensor(d, dtype, true);
}

// Fails before allocating an output (held as doubles while computed) of absurd size.
inline void check_output_size(const KernelContext& ctx, const Dims& dims) {
  const int64_t n = element_count(dims);
  if (n > (int64_t{1} << 31))
    ctx.fail("output shape " + dims_to_string(dims) + " is too large (" + std::to_string(n) +
             " elements)");
}

inline void require_float(const KernelContext& ctx, const Tensor& t, const std::string& what) {
  if (!is_float(t.dtype()))
    ctx.unsupported(what + " must have a floating element type, got " + t.describe());
}

// Coordinates of flat index `i` in a row-major tensor of `dims`.
inline void unravel(int64_t i, const Dims& dims, std::vector<int64_t>& coord) {
  coord.resize(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    coord[k] = dims[k] == 0 ? 0 : i % dims[k];
    if (dims[k] != 0) i /= dims[k];
  }
}

inline int64_t product(const Dims& d) {
  int64_t p = 1;
  for (int64_t x : d) p *= x;
  return p;
}

// Sliding-window geometry over the spatial dims of an N-C-spatial input.
struct Window {
  Dims in;                                                // spatial input dims
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  Dims out;
};

// Reads kernel_shape (or `kernel` when the op gets it from a weight), strides, dilations,
// pads and auto_pad and computes output dims as Conv and the pools define them.
inline Window make_window(const KernelContext& ctx, const Dims& in, std::vector<int64_t> kernel,
                          bool ceil_mode) {
  const size_t r = in.size();
  Window w;
  w.in = in;
  w.kernel = std::move(kernel);
  ctx.check(w.kernel.size() == r, "kernel_shape has " + std::to_string(w.kernel.size()) +
                                      " values; expected one per spatial dim (" +
                                      std::to_string(r) + ")");
  w.strides = ctx.attr_ints("strides", std::vector<int64_t>(r, 1));
  w.dilations = ctx.attr_ints("dilations", std::vector<int64_t>(r, 1));
  w.pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  ctx.check(w.strides.size() == r, "strides must have one value per spatial dim");
  ctx.check(w.dilations.size() == r, "dilations must have one value per spatial dim");
  ctx.check(w.pads.size() == 2 * r, "pads must have two values per spatial dim");
  std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  w.out.resize(r);
  for (size_t i = 0; i < r; ++i) {
    ctx.check(w.kernel[i] >= 1, "kernel dims must be positive");
    ctx.check(w.strides[i] >= 1, "strides must be positive");
    ctx.check(w.dilations[i] >= 1, "dilations must be positive");
    ctx.check(w.pads[i] >= 0 && w.pads[i + r] >= 0, "pads must be non-negative");
    const int64_t dk = (w.kernel[i] - 1) * w.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t o = (in[i] + w.strides[i] - 1) / w.strides[i];
      const int64_t total = std::max<int64_t>(0, (o - 1) * w.strides[i] + dk - in[i]);
      const int64_t small = total / 2;
      w.pads[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      w.pads[i + r] = total - w.pads[i];
      w.out[i] = o;
    } else if (auto_pad == "VALID") {
      w.pads[i] = w.pads[i + r] = 0;
      ctx.check(in[i] >= dk, "input is smaller than the (dilated) kernel");
      w.out[i] = (in[i] - dk) / w.strides[i] + 1;
    } else if (auto_pad == "NOTSET" || auto_pad.empty()) {
      const int64_t span = in[i] + w.pads[i] + w.pads[i + r] - dk;
      ctx.check(span >= 0,
                "padded input dim " + std::to_string(i) + " is smaller than the (dilated) kernel");
      if (ceil_mode) {
        int64_t o = (span + w.strides[i] - 1) / w.strides[i] + 1;
        // The last window must start inside the input or its begin padding.
        if ((o - 1) * w.strides[i] >= in[i] + w.pads[i]) --o;
        w.out[i] = o;
      } else {
        w.out[i] = span / w.strides[i] + 1;
      }
    } else {
      ctx.fail("auto_pad '" + auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
  }
  check_output_size(ctx, w.out);
  check_output_size(ctx, w.kernel);
  return w;
}

}  // namespace kpt::ops::vision
