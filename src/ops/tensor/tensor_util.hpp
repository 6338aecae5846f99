#pragma once
// Helpers shared by the shape and indexing kernels. These ops only move elements, so they work
// on raw bytes (dtype_size) with a separate path for string tensors; that covers every dtype.
#include <cstring>
#include <string>
#include <vector>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops::tensor_ops {

inline void copy_element(const Tensor& src, int64_t si, Tensor& dst, int64_t di) {
  if (src.dtype() == DType::String) {
    dst.strings()[static_cast<size_t>(di)] = src.strings()[static_cast<size_t>(si)];
    return;
  }
  const size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw()) + static_cast<size_t>(di) * es,
              static_cast<const char*>(src.raw()) + static_cast<size_t>(si) * es, es);
}

// Copies `count` consecutive elements.
inline void copy_elements(const Tensor& src, int64_t si, Tensor& dst, int64_t di, int64_t count) {
  if (count <= 0) return;
  if (src.dtype() == DType::String) {
    for (int64_t k = 0; k < count; ++k)
      dst.strings()[static_cast<size_t>(di + k)] = src.strings()[static_cast<size_t>(si + k)];
    return;
  }
  const size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw()) + static_cast<size_t>(di) * es,
              static_cast<const char*>(src.raw()) + static_cast<size_t>(si) * es,
              static_cast<size_t>(count) * es);
}

// Zeroed offsets for `n` output elements; fails before allocating when the output could not
// be allocated anyway.
inline void check_output_elements(int64_t n) {
  if (n < 0 || static_cast<uint64_t>(n) > max_allocation_bytes() / sizeof(int64_t))
    fail("an output of " + std::to_string(n) + " elements exceeds the allocation limit of " +
         std::to_string(max_allocation_bytes()) + " bytes");
}
inline std::vector<int64_t> offset_buffer(int64_t n) {
  check_output_elements(n);
  return std::vector<int64_t>(static_cast<size_t>(n), 0);
}

// a * b, failing on int64 overflow.
inline int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    fail(std::to_string(a) + " * " + std::to_string(b) + " overflows int64");
  return r;
}

// A tensor of shape `dims` whose element i is element offsets[i] of `src`; where offsets[i] is
// negative it is element 0 of `fill` (a one-element tensor of src's dtype) or zero/empty.
inline Tensor take_elements(const Tensor& src, const Dims& dims,
                            const std::vector<int64_t>& offsets, const Tensor* fill = nullptr) {
  Tensor out(src.dtype(), dims);
  for (int64_t i = 0; i < out.numel(); ++i) {
    const int64_t off = offsets[static_cast<size_t>(i)];
    if (off >= 0)
      copy_element(src, off, out, i);
    else if (fill != nullptr)
      copy_element(*fill, 0, out, i);
  }
  return out;
}

// Multi-index of row-major linear index `i` in `dims`.
inline void unravel(int64_t i, const Dims& dims, std::vector<int64_t>& idx) {
  idx.resize(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = dims[d] == 0 ? 0 : i % dims[d];
    if (dims[d] != 0) i /= dims[d];
  }
}

// Resolves an index into [0, dim): negative values count from the end; anything outside
// [-dim, dim) fails naming the index and the valid range.
inline int64_t resolve_index(const KernelContext& ctx, int64_t index, int64_t dim,
                             const std::string& what) {
  if (index < -dim || index >= dim)
    ctx.fail(what + " index " + std::to_string(index) + " is out of range; expected [" +
             std::to_string(-dim) + ", " + std::to_string(dim - 1) + "]");
  return index < 0 ? index + dim : index;
}

// Normalized, duplicate-free axes for a tensor of rank `rank`.
inline std::vector<int64_t> normalize_axes(const KernelContext& ctx, std::vector<int64_t> axes,
                                           int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (auto& a : axes) {
    a = normalize_axis(a, rank);
    ctx.check(!seen[static_cast<size_t>(a)], "axis " + std::to_string(a) + " is repeated");
    seen[static_cast<size_t>(a)] = true;
  }
  return axes;
}

// Axes given by attribute `name` before `input_since_opset` and by input `input_index` after.
// `present` tells whether any were given.
inline std::vector<int64_t> axes_from(const KernelContext& ctx, const std::string& name,
                                      size_t input_index, int input_since_opset, bool& present) {
  if (ctx.opset() >= input_since_opset) {
    present = ctx.has_input(input_index);
    return present ? ctx.input(input_index).to_i64_vector() : std::vector<int64_t>{};
  }
  present = ctx.node().has_attr(name);
  return ctx.attr_ints(name);
}

inline int64_t product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

}  // namespace kpt::ops::tensor_ops
