#include <algorithm>
#include <type_traits>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/elementwise.hpp"

namespace kpt::cuda {

namespace {

using detail::from_f32;
using detail::to_f32;

// Offsets of output element i in each operand.
template <int N>
struct Offsets {
  int64_t o[N];
};

template <int N>
__device__ __forceinline__ Offsets<N> operand_offsets(const BroadcastLayout& l, int64_t i) {
  Offsets<N> r{};
  if (l.contiguous) {
#pragma unroll
    for (int k = 0; k < N; ++k) r.o[k] = i;
    return r;
  }
  for (int d = l.rank - 1; d >= 0; --d) {
    const int64_t c = i % l.dims[d];
    i /= l.dims[d];
#pragma unroll
    for (int k = 0; k < N; ++k) r.o[k] += c * l.strides[k][d];
  }
  return r;
}

unsigned grid_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, 65535 * 8));
}

template <typename C>
__device__ __forceinline__ C apply_binary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Max:
      return a > b ? a : b;
    case BinaryOp::Min:
      return a < b ? a : b;
    case BinaryOp::Pow:
      break;
  }
  return a;
}

template <typename T>
__global__ void binary_float_kernel(BinaryOp op, const T* __restrict__ a, const T* __restrict__ b,
                                    T* __restrict__ y, BroadcastLayout l) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < l.numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto off = operand_offsets<2>(l, i);
    const float x = to_f32(a[off.o[0]]), z = to_f32(b[off.o[1]]);
    y[i] = from_f32<T>(op == BinaryOp::Pow ? powf(x, z) : apply_binary(op, x, z));
  }
}

// Both operands repeat with a period (the output's size for a full operand, its own size for one
// broadcast over leading axes only: a bias [N] over [..., N], position embeddings [1, S, H] over
// [B, S, H]): one modulo per V elements instead of a division per axis per element.
template <typename T, int V>
__global__ void binary_periodic_kernel(BinaryOp op, const T* __restrict__ a,
                                       const T* __restrict__ b, T* __restrict__ y, int64_t n,
                                       int64_t period_a, int64_t period_b) {
  using P = detail::Pack<T>;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n / V;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i * V;
    const int64_t oa = period_a == n ? e : e % period_a, ob = period_b == n ? e : e % period_b;
    if constexpr (V == 1) {
      const float x = to_f32(a[oa]), z = to_f32(b[ob]);
      y[e] = from_f32<T>(op == BinaryOp::Pow ? powf(x, z) : apply_binary(op, x, z));
    } else {
      const P pa = *reinterpret_cast<const P*>(a + oa), pb = *reinterpret_cast<const P*>(b + ob);
      P out;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float x = to_f32(pa.v[k]), z = to_f32(pb.v[k]);
        out.v[k] = from_f32<T>(op == BinaryOp::Pow ? powf(x, z) : apply_binary(op, x, z));
      }
      *reinterpret_cast<P*>(y + e) = out;
    }
  }
}

// The period of operand k when it is the output's trailing axes repeated over leading ones
// (0 when it is broadcast some other way).
int64_t repeat_period(const BroadcastLayout& l, int k) {
  int64_t expected = 1;
  int d = l.rank - 1;
  for (; d >= 0; --d) {
    if (l.dims[d] == 1) continue;
    if (l.strides[k][d] != expected) break;
    expected *= l.dims[d];
  }
  for (; d >= 0; --d) {
    if (l.dims[d] != 1 && l.strides[k][d] != 0) return 0;
  }
  return expected;
}

template <typename T>
__global__ void binary_int_kernel(BinaryOp op, const T* __restrict__ a, const T* __restrict__ b,
                                  T* __restrict__ y, BroadcastLayout l) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < l.numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto off = operand_offsets<2>(l, i);
    const int64_t x = a[off.o[0]], z = b[off.o[1]];
    // Integer division by zero is undefined in ONNX; give 0 rather than trap.
    y[i] = static_cast<T>(op == BinaryOp::Div ? (z == 0 ? 0 : x / z) : apply_binary(op, x, z));
  }
}

template <typename W>
__global__ void where_kernel(const uint8_t* __restrict__ c, const W* __restrict__ a,
                             const W* __restrict__ b, W* __restrict__ y, BroadcastLayout l) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < l.numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto off = operand_offsets<3>(l, i);
    y[i] = c[off.o[0]] ? a[off.o[1]] : b[off.o[2]];
  }
}

__device__ __forceinline__ float apply_unary(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::Erf:
      return erff(x);
    case UnaryOp::Tanh:
      return tanhf(x);
    case UnaryOp::Sqrt:
      return sqrtf(x);
    case UnaryOp::Relu:
      return x > 0.0f ? x : 0.0f;
    case UnaryOp::Sigmoid:
      return 1.0f / (1.0f + expf(-x));
    case UnaryOp::Exp:
      return expf(x);
    case UnaryOp::Log:
      return logf(x);
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Abs:
      return fabsf(x);
    case UnaryOp::Reciprocal:
      return 1.0f / x;
  }
  return x;
}

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = from_f32<T>(apply_unary(op, to_f32(x[i])));
  }
}

// Element conversions for casts: floats go through double (f64 keeps its precision), integers
// through int64.
template <typename T>
__device__ __forceinline__ double load_as_double(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) {
    return static_cast<double>(to_f32(p[i]));
  } else {
    return static_cast<double>(p[i]);
  }
}

template <typename T>
__device__ __forceinline__ T store_from_double(double v) {
  if constexpr (std::is_same_v<T, __half>) {
    if (isfinite(v)) v = fmin(fmax(v, -65504.0), 65504.0);
    return __float2half_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    // Float to integer truncates toward zero (ONNX Cast); NaN gives 0.
    return isnan(v) ? T{0} : static_cast<T>(static_cast<int64_t>(v));
  }
}

template <typename From, typename To>
__global__ void cast_kernel(const From* __restrict__ x, To* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_integral_v<From> && std::is_integral_v<To>) {
      if constexpr (std::is_same_v<To, bool>) {
        y[i] = x[i] != 0;
      } else {
        y[i] = static_cast<To>(static_cast<int64_t>(x[i]));
      }
    } else {
      y[i] = store_from_double<To>(load_as_double(x, i));
    }
  }
}

// Calls f(T{}) with the device type of `dtype` among the cast types.
template <typename F>
bool dispatch_cast_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32:
      f(float{});
      return true;
    case DType::F16:
      f(__half{});
      return true;
    case DType::BF16:
      f(__nv_bfloat16{});
      return true;
    case DType::F64:
      f(double{});
      return true;
    case DType::I64:
      f(int64_t{});
      return true;
    case DType::I32:
      f(int32_t{});
      return true;
    case DType::I8:
      f(int8_t{});
      return true;
    case DType::U8:
      f(uint8_t{});
      return true;
    case DType::Bool:
      f(bool{});
      return true;
    default:
      return false;
  }
}

}  // namespace

BroadcastLayout broadcast_layout(const Dims* const* operands, int count, Dims& out_dims) {
  BroadcastLayout l;
  size_t rank = 0;
  for (int k = 0; k < count; ++k) rank = std::max(rank, operands[k]->size());
  if (rank > kMaxBroadcastRank)
    throw Error("element-wise op on the GPU: rank " + std::to_string(rank) + " is over " +
                std::to_string(kMaxBroadcastRank));
  out_dims.assign(rank, 1);
  for (int k = 0; k < count; ++k) {
    const Dims& d = *operands[k];
    for (size_t i = 0; i < d.size(); ++i) {
      int64_t& o = out_dims[rank - d.size() + i];
      if (d[i] == o || d[i] == 1) continue;
      if (o != 1)
        throw Error("element-wise op on the GPU: shapes do not broadcast (" +
                    dims_to_string(*operands[0]) + " and " + dims_to_string(d) + ")");
      o = d[i];
    }
  }
  l.rank = static_cast<int>(rank);
  l.numel = element_count(out_dims);
  for (size_t i = 0; i < rank; ++i) l.dims[i] = out_dims[i];
  for (int k = 0; k < count; ++k) {
    const Dims& d = *operands[k];
    if (d != out_dims) l.contiguous = false;
    int64_t stride = 1;
    for (size_t i = d.size(); i-- > 0;) {
      const size_t o = rank - d.size() + i;
      l.strides[k][o] = d[i] == 1 ? 0 : stride;
      stride *= d[i];
    }
  }
  return l;
}

void binary(BinaryOp op, DType dtype, const void* a, const void* b, void* y,
            const BroadcastLayout& l, cudaStream_t stream) {
  if (l.numel == 0) return;
  const int threads = 256;
  const unsigned grid = grid_for(l.numel, threads);
  if (dtype == DType::I64 || dtype == DType::I32) {
    if (op == BinaryOp::Pow) throw Error("Pow on the GPU takes float operands only");
    if (dtype == DType::I64) {
      binary_int_kernel<<<grid, threads, 0, stream>>>(op, static_cast<const int64_t*>(a),
                                                      static_cast<const int64_t*>(b),
                                                      static_cast<int64_t*>(y), l);
    } else {
      binary_int_kernel<<<grid, threads, 0, stream>>>(op, static_cast<const int32_t*>(a),
                                                      static_cast<const int32_t*>(b),
                                                      static_cast<int32_t*>(y), l);
    }
  } else {
    detail::dispatch_float(dtype, "element-wise op", [&](auto t) {
      using T = decltype(t);
      const auto *ta = static_cast<const T*>(a), *tb = static_cast<const T*>(b);
      auto* ty = static_cast<T*>(y);
      const int64_t pa = repeat_period(l, 0), pb = repeat_period(l, 1);
      if (pa > 0 && pb > 0) {
        constexpr int V = detail::Pack<T>::kCount;
        const bool vector = l.numel % V == 0 && pa % V == 0 && pb % V == 0 &&
                            reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(b) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(y) % 16 == 0;
        if (vector) {
          binary_periodic_kernel<T, V><<<grid_for(l.numel / V, threads), threads, 0, stream>>>(
              op, ta, tb, ty, l.numel, pa, pb);
        } else {
          binary_periodic_kernel<T, 1>
              <<<grid, threads, 0, stream>>>(op, ta, tb, ty, l.numel, pa, pb);
        }
      } else {
        binary_float_kernel<<<grid, threads, 0, stream>>>(op, ta, tb, ty, l);
      }
    });
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void where(DType dtype, const void* cond, const void* a, const void* b, void* y,
           const BroadcastLayout& l, cudaStream_t stream) {
  if (l.numel == 0) return;
  const int threads = 256;
  const unsigned grid = grid_for(l.numel, threads);
  const auto c = static_cast<const uint8_t*>(cond);
  switch (dtype_size(dtype)) {
    case 1:
      where_kernel<<<grid, threads, 0, stream>>>(c, static_cast<const uint8_t*>(a),
                                                 static_cast<const uint8_t*>(b),
                                                 static_cast<uint8_t*>(y), l);
      break;
    case 2:
      where_kernel<<<grid, threads, 0, stream>>>(c, static_cast<const uint16_t*>(a),
                                                 static_cast<const uint16_t*>(b),
                                                 static_cast<uint16_t*>(y), l);
      break;
    case 4:
      where_kernel<<<grid, threads, 0, stream>>>(c, static_cast<const uint32_t*>(a),
                                                 static_cast<const uint32_t*>(b),
                                                 static_cast<uint32_t*>(y), l);
      break;
    case 8:
      where_kernel<<<grid, threads, 0, stream>>>(c, static_cast<const uint64_t*>(a),
                                                 static_cast<const uint64_t*>(b),
                                                 static_cast<uint64_t*>(y), l);
      break;
    default:
      throw Error("Where on the GPU: no kernel for " + std::string(dtype_name(dtype)));
  }
  KPT_CUDA_CHECK_LAUNCH();
}

void unary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int threads = 256;
  detail::dispatch_float(dtype, "unary op", [&](auto t) {
    using T = decltype(t);
    unary_kernel<<<grid_for(n, threads), threads, 0, stream>>>(op, static_cast<const T*>(x),
                                                               static_cast<T*>(y), n);
  });
  KPT_CUDA_CHECK_LAUNCH();
}

bool cast_supported(DType dtype) {
  return dispatch_cast_type(dtype, [](auto) {});
}

void cast(DType from, DType to, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (!cast_supported(from) || !cast_supported(to))
    throw Error("Cast on the GPU: no kernel from " + std::string(dtype_name(from)) + " to " +
                std::string(dtype_name(to)));
  if (n == 0) return;
  const int threads = 256;
  dispatch_cast_type(from, [&](auto f) {
    using From = decltype(f);
    dispatch_cast_type(to, [&](auto t) {
      using To = decltype(t);
      cast_kernel<<<grid_for(n, threads), threads, 0, stream>>>(static_cast<const From*>(x),
                                                                static_cast<To*>(y), n);
    });
  });
  KPT_CUDA_CHECK_LAUNCH();
}

}  // namespace kpt::cuda
