#include "ops/op_util.hpp"

#include <algorithm>

namespace kpt::ops {

int64_t normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> strides_of(const Dims& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

Dims broadcast_dims(const Dims& a, const Dims& b) {
  size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail("shapes " + dims_to_string(a) + " and " + dims_to_string(b) + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Dims broadcast_all(const std::vector<Dims>& shapes) {
  Dims out;
  for (const auto& s : shapes) out = broadcast_dims(out, s);
  return out;
}

std::vector<int64_t> broadcast_offsets(const Dims& out, const Dims& in) {
  const size_t r = out.size();
  check(in.size() <= r,
        [&] { return "cannot broadcast " + dims_to_string(in) + " to " + dims_to_string(out); });
  std::vector<int64_t> in_strides(r, 0);
  auto s = strides_of(in);
  for (size_t i = 0; i < in.size(); ++i) {
    size_t oi = i + (r - in.size());
    in_strides[oi] = in[i] == 1 ? 0 : s[i];
  }
  const int64_t n = element_count(out);
  check(static_cast<uint64_t>(n) <= max_allocation_bytes() / sizeof(int64_t), [&] {
    return "broadcasting to shape " + dims_to_string(out) +
           " needs more than the allocation limit of " + std::to_string(max_allocation_bytes()) +
           " bytes";
  });
  std::vector<int64_t> offsets(static_cast<size_t>(n));
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t k = 0; k < n; ++k) {
    offsets[static_cast<size_t>(k)] = off;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < out[d]) {
        off += in_strides[d];
        break;
      }
      off -= in_strides[d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
  return offsets;
}

Tensor to_compute(const Tensor& t) {
  return is_storage_float(t.dtype()) ? cast_tensor(t, DType::F32) : t;
}

Tensor from_compute(const Tensor& t, DType original) {
  return is_storage_float(original) && t.dtype() != original ? cast_tensor(t, original) : t;
}

}  // namespace kpt::ops
