// Transpose: permutes the axes.
#include <cstring>

#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {
using namespace tensor_ops;

// Copies element by element in output order, stepping the input offset like an odometer: no
// per-element index buffer, so constant folding can transpose a 1 GB weight in seconds.
template <typename T>
void permute(const T* in, T* out, const Dims& out_dims, const std::vector<int64_t>& step) {
  const size_t rank = out_dims.size();
  const int64_t inner = out_dims[rank - 1];
  const int64_t inner_step = step[rank - 1];
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < rank; ++d) outer *= out_dims[d];
  std::vector<int64_t> idx(rank, 0);
  int64_t off = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) out[o * inner + j] = in[off + j * inner_step];
    for (size_t d = rank - 1; d-- > 0;) {
      off += step[d];
      if (++idx[d] < out_dims[d]) break;
      off -= step[d] * out_dims[d];
      idx[d] = 0;
    }
  }
}

// Swapping the last two axes of [outer, R, C]: tiled so both sides stay in cache.
template <typename T>
void transpose_last_two(const T* in, T* out, int64_t outer, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t b = 0; b < outer; ++b) {
    const T* src = in + b * rows * cols;
    T* dst = out + b * rows * cols;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
          for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
            dst[c * rows + r] = src[r * cols + c];
          }
        }
      }
    }
  }
}

template <typename T>
void transpose_typed(const Tensor& x, Tensor& y, const std::vector<int64_t>& perm) {
  const size_t rank = x.rank();
  bool last_two = rank >= 2 && perm[rank - 1] == static_cast<int64_t>(rank - 2) &&
                  perm[rank - 2] == static_cast<int64_t>(rank - 1);
  for (size_t d = 0; d + 2 < rank && last_two; ++d) last_two = perm[d] == static_cast<int64_t>(d);
  if (last_two) {
    const int64_t rows = x.dims()[rank - 2], cols = x.dims()[rank - 1];
    const int64_t outer = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
    transpose_last_two(x.data<T>(), y.data<T>(), outer, rows, cols);
    return;
  }
  const auto in_strides = strides_of(x.dims());
  std::vector<int64_t> step(rank);
  for (size_t d = 0; d < rank; ++d) step[d] = in_strides[static_cast<size_t>(perm[d])];
  permute(x.data<T>(), y.data<T>(), y.dims(), step);
}

struct Bytes16 {
  uint64_t lo, hi;
};

void transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const size_t rank = x.rank();
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (!ctx.node().has_attr("perm")) {
    perm.resize(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  }
  ctx.check(perm.size() == rank, [&] {
    return "perm " + dims_to_string(perm) + " does not match input " + x.describe();
  });
  perm = normalize_axes(ctx, perm, static_cast<int64_t>(rank));
  Dims dims(rank);
  for (size_t i = 0; i < rank; ++i) dims[i] = x.dims()[static_cast<size_t>(perm[i])];
  if (x.dtype() == DType::String || rank == 0 || x.numel() == 0) {
    const auto in_strides = strides_of(x.dims());
    std::vector<int64_t> offsets = offset_buffer(x.numel());
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < x.numel(); ++i) {
      unravel(i, dims, idx);
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d) off += idx[d] * in_strides[static_cast<size_t>(perm[d])];
      offsets[static_cast<size_t>(i)] = off;
    }
    ctx.set_output(0, take_elements(x, dims, offsets));
    return;
  }
  Tensor y = Tensor::uninitialized(x.dtype(), dims);
  switch (dtype_size(x.dtype())) {
    case 1:
      transpose_typed<uint8_t>(x, y, perm);
      break;
    case 2:
      transpose_typed<uint16_t>(x, y, perm);
      break;
    case 4:
      transpose_typed<uint32_t>(x, y, perm);
      break;
    case 8:
      transpose_typed<uint64_t>(x, y, perm);
      break;
    case 16:
      transpose_typed<Bytes16>(x, y, perm);
      break;
    default:
      ctx.fail("cannot transpose elements of " + std::to_string(dtype_size(x.dtype())) + " bytes");
  }
  ctx.set_output(0, y);
}

}  // namespace

KPT_REGISTER_OP("", "Transpose", 1, transpose);

}  // namespace kpt::ops
