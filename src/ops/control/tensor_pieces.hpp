#pragma once
// Cutting tensors into pieces along an axis and joining pieces back, for any dtype (strings
// included). Shared by Loop/Scan (per-iteration slices) and the sequence ops.
#include <cstring>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/tensor.hpp"

namespace kpt::ops::control {

// Copies `count` elements from src[src_off..] to dst[dst_off..]; both must share a dtype.
inline void copy_elements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off,
                          int64_t count) {
  if (count <= 0) return;
  if (src.dtype() == DType::String) {
    const auto& s = src.strings();
    auto& d = dst.strings();
    for (int64_t i = 0; i < count; ++i) d[dst_off + i] = s[src_off + i];
    return;
  }
  const size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw()) + dst_off * es,
              static_cast<const char*>(src.raw()) + src_off * es, static_cast<size_t>(count) * es);
}

// Product of dims[begin, end).
inline int64_t dims_product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

// Elements [start, start+len) along `axis` (already normalized). With keep_axis=false the axis
// is dropped (len must be 1).
inline Tensor slice_axis(const Tensor& t, size_t axis, int64_t start, int64_t len,
                         bool keep_axis = true) {
  const Dims& d = t.dims();
  const int64_t outer = dims_product(d, 0, axis);
  const int64_t inner = dims_product(d, axis + 1, d.size());
  const int64_t n = d[axis];
  Dims od = d;
  if (keep_axis) {
    od[axis] = len;
  } else {
    od.erase(od.begin() + static_cast<std::ptrdiff_t>(axis));
  }
  Tensor out(t.dtype(), od);
  for (int64_t o = 0; o < outer; ++o) {
    copy_elements(t, (o * n + start) * inner, out, o * len * inner, len * inner);
  }
  return out;
}

// Joins tensors along an existing axis (already normalized); all other dims must agree.
inline Tensor concat_axis(const std::vector<Tensor>& parts, size_t axis) {
  check(!parts.empty(), "cannot concatenate zero tensors");
  const Tensor& first = parts[0];
  Dims od = first.dims();
  check(axis < od.size(),
        "concatenation axis " + std::to_string(axis) + " is out of range for " + first.describe());
  od[axis] = 0;
  for (const auto& p : parts) {
    check(p.dtype() == first.dtype() && p.rank() == first.rank(),
          "cannot concatenate " + p.describe() + " with " + first.describe());
    for (size_t k = 0; k < od.size(); ++k) {
      if (k != axis)
        check(p.dims()[k] == first.dims()[k], "cannot concatenate " + p.describe() + " with " +
                                                  first.describe() + ": dims other than axis " +
                                                  std::to_string(axis) + " differ");
    }
    od[axis] += p.dims()[axis];
  }
  Tensor out(first.dtype(), od);
  const int64_t outer = dims_product(od, 0, axis);
  const int64_t inner = dims_product(od, axis + 1, od.size());
  int64_t at = 0;
  for (const auto& p : parts) {
    const int64_t len = p.dims()[axis];
    for (int64_t o = 0; o < outer; ++o) {
      copy_elements(p, o * len * inner, out, (o * od[axis] + at) * inner, len * inner);
    }
    at += len;
  }
  return out;
}

// Joins equally shaped tensors along a new axis inserted at `axis` (0..rank).
inline Tensor stack_axis(const std::vector<Tensor>& parts, size_t axis) {
  check(!parts.empty(), "cannot stack zero tensors");
  std::vector<Tensor> expanded;
  expanded.reserve(parts.size());
  for (const auto& p : parts) {
    check(p.dims() == parts[0].dims(), "cannot stack tensors of different shapes " + p.describe() +
                                           " and " + parts[0].describe());
    Dims d = p.dims();
    check(axis <= d.size(), "stack axis out of range");
    d.insert(d.begin() + static_cast<std::ptrdiff_t>(axis), 1);
    expanded.push_back(p.reshaped(d));
  }
  return concat_axis(expanded, axis);
}

}  // namespace kpt::ops::control
