#pragma once
// Shared helpers for reference kernels: axes, broadcasting, dtype dispatch. Look here before
// writing a helper in an op file.
#include <cstdint>
#include <string>
#include <vector>

#include "core/cast.hpp"
#include "kpt/error.hpp"
#include "kpt/tensor.hpp"

namespace kpt::ops {

// Maps a possibly negative axis into [0, rank); fails naming the axis and rank otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank);

// Row-major strides of dims (in elements).
std::vector<int64_t> strides_of(const Dims& dims);

// Multidirectional (numpy) broadcast of two or more shapes; fails naming both shapes.
Dims broadcast_dims(const Dims& a, const Dims& b);
Dims broadcast_all(const std::vector<Dims>& shapes);

// For every element of `out` (row-major), the offset of the element of a tensor of shape `in`
// that broadcasts onto it.
std::vector<int64_t> broadcast_offsets(const Dims& out, const Dims& in);

// True for the types that reference kernels compute in float32 and round once at the end.
inline bool is_storage_float(DType t) {
  return t == DType::F16 || t == DType::BF16 || t == DType::F8E4M3FN || t == DType::F8E4M3FNUZ ||
         t == DType::F8E5M2 || t == DType::F8E5M2FNUZ || t == DType::F4E2M1 || t == DType::F8E8M0;
}
// The tensor widened to f32 when its type is a storage-only float, else itself (no copy).
Tensor to_compute(const Tensor& t);
// Rounds a computed f32 tensor back to `original` when that is a storage-only float.
Tensor from_compute(const Tensor& t, DType original);

// Calls f.template operator()<T>() for the integer types (signed and unsigned, 8 to 64 bits).
// Fails for other types naming `what`.
template <typename F>
decltype(auto) dispatch_integer(DType t, const std::string& what, F&& f) {
  switch (t) {
    case DType::I8:
      return f.template operator()<int8_t>();
    case DType::U8:
      return f.template operator()<uint8_t>();
    case DType::I16:
      return f.template operator()<int16_t>();
    case DType::U16:
      return f.template operator()<uint16_t>();
    case DType::I32:
      return f.template operator()<int32_t>();
    case DType::U32:
      return f.template operator()<uint32_t>();
    case DType::I64:
      return f.template operator()<int64_t>();
    case DType::U64:
      return f.template operator()<uint64_t>();
    default:
      unsupported(what + " does not support element type " + std::string(dtype_name(t)));
  }
}

// Same, for every type kernels compute in: float, double, the integers, bool.
template <typename F>
decltype(auto) dispatch(DType t, const std::string& what, F&& f) {
  if (t == DType::F32) return f.template operator()<float>();
  if (t == DType::F64) return f.template operator()<double>();
  if (t == DType::Bool) return f.template operator()<bool>();
  return dispatch_integer(t, what, std::forward<F>(f));
}

// Same, restricted to float and double.
template <typename F>
decltype(auto) dispatch_float(DType t, const std::string& what, F&& f) {
  switch (t) {
    case DType::F32:
      return f.template operator()<float>();
    case DType::F64:
      return f.template operator()<double>();
    default:
      unsupported(what + " does not support element type " + std::string(dtype_name(t)));
  }
}

}  // namespace kpt::ops
