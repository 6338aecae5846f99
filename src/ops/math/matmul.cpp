// MatMul (numpy semantics: batch broadcasting, 1-D operands promoted) and Gemm.
#include <type_traits>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

// Accumulator for dot products: double for floats, 64-bit (wrapping) for integers.
template <typename T>
using DotAcc = std::conditional_t<std::is_floating_point_v<T>, double,
                                  std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

void matmul(KernelContext& ctx) {
  const Tensor& original = ctx.input(0);
  const Tensor a = to_compute(original);
  const Tensor b = to_compute(ctx.input(1));
  ctx.check(a.dtype() == b.dtype(), [&] {
    return "inputs have different element types " + a.describe() + " and " + b.describe();
  });
  ctx.check(a.rank() >= 1 && b.rank() >= 1, [&] {
    return "inputs must have rank >= 1, got " + a.describe() + " and " + b.describe();
  });
  Dims ad = a.dims();
  Dims bd = b.dims();
  const bool a_vec = ad.size() == 1;
  const bool b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2];
  const int64_t k = ad[ad.size() - 1];
  const int64_t n = bd[bd.size() - 1];
  ctx.check(bd[bd.size() - 2] == k, [&] {
    return "inner dimensions differ: " + a.describe() + " x " + b.describe() +
           " (expected A[..., M, K] x B[..., K, N])";
  });
  const Dims a_batch(ad.begin(), ad.end() - 2);
  const Dims b_batch(bd.begin(), bd.end() - 2);
  const Dims batch = broadcast_dims(a_batch, b_batch);
  const std::vector<int64_t> a_off = broadcast_offsets(batch, a_batch);
  const std::vector<int64_t> b_off = broadcast_offsets(batch, b_batch);

  Dims out_dims = batch;
  if (!a_vec) out_dims.push_back(m);
  if (!b_vec) out_dims.push_back(n);
  Tensor out(a.dtype(), out_dims);
  dispatch(a.dtype(), "MatMul", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      ctx.unsupported("MatMul does not support bool inputs");
    } else {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* po = out.data<T>();
      for (size_t bi = 0; bi < a_off.size(); ++bi) {
        const T* ma = pa + a_off[bi] * m * k;
        const T* mb = pb + b_off[bi] * k * n;
        T* mo = po + static_cast<int64_t>(bi) * m * n;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            DotAcc<T> s = 0;
            for (int64_t p = 0; p < k; ++p)
              s += static_cast<DotAcc<T>>(ma[i * k + p]) * static_cast<DotAcc<T>>(mb[p * n + j]);
            mo[i * n + j] = static_cast<T>(s);
          }
      }
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

// Y = alpha * op(A) * op(B) + beta * C, with C broadcast to [M, N].
void gemm(KernelContext& ctx) {
  const Tensor& original = ctx.input(0);
  const Tensor a = to_compute(original);
  const Tensor b = to_compute(ctx.input(1));
  ctx.check(a.rank() == 2 && b.rank() == 2,
            [&] { return "A and B must be 2-D, got " + a.describe() + " and " + b.describe(); });
  ctx.check(a.dtype() == b.dtype(), [&] {
    return "inputs have different element types " + a.describe() + " and " + b.describe();
  });
  const bool ta = ctx.attr_int("transA", 0) != 0;
  const bool tb = ctx.attr_int("transB", 0) != 0;
  const double alpha = ctx.attr_float("alpha", 1.0f);
  const double beta = ctx.attr_float("beta", 1.0f);
  const int64_t m = ta ? a.dims()[1] : a.dims()[0];
  const int64_t k = ta ? a.dims()[0] : a.dims()[1];
  const int64_t kb = tb ? b.dims()[1] : b.dims()[0];
  const int64_t n = tb ? b.dims()[0] : b.dims()[1];
  ctx.check(k == kb, [&] {
    return "inner dimensions differ: " + a.describe() + " x " + b.describe() +
           " with transA=" + std::to_string(ta) + ", transB=" + std::to_string(tb);
  });
  const Dims out_dims{m, n};
  Tensor c;
  std::vector<int64_t> c_off;
  if (ctx.has_input(2)) {
    c = to_compute(ctx.input(2));
    ctx.check(c.dtype() == a.dtype(), [&] {
      return "C has element type " + c.describe() + ", expected " +
             std::string(dtype_name(a.dtype()));
    });
    bool fits = c.rank() <= 2;
    for (size_t i = 0; fits && i < c.rank(); ++i) {
      const int64_t want = out_dims[2 - c.rank() + i];
      fits = c.dims()[i] == 1 || c.dims()[i] == want;
    }
    ctx.check(fits, [&] {
      return "C " + c.describe() + " does not broadcast to [M, N] = " + dims_to_string(out_dims);
    });
    c_off = broadcast_offsets(out_dims, c.dims());
  }
  Tensor out(a.dtype(), out_dims);
  dispatch(a.dtype(), "Gemm", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      ctx.unsupported("Gemm does not support bool inputs");
    } else {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      const T* pc = c.defined() ? c.data<T>() : nullptr;
      T* po = out.data<T>();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          DotAcc<T> s = 0;
          for (int64_t p = 0; p < k; ++p) {
            const T av = ta ? pa[p * m + i] : pa[i * k + p];
            const T bv = tb ? pb[j * k + p] : pb[p * n + j];
            s += static_cast<DotAcc<T>>(av) * static_cast<DotAcc<T>>(bv);
          }
          double y = alpha * static_cast<double>(s);
          if (pc) y += beta * static_cast<double>(pc[c_off[i * n + j]]);
          if constexpr (std::is_floating_point_v<T>) {
            po[i * n + j] = static_cast<T>(y);
          } else {
            // Integer Gemm: exact when alpha and beta are 1 (the common case).
            if (alpha == 1.0 && beta == 1.0)
              po[i * n + j] = static_cast<T>(
                  s + (pc ? static_cast<DotAcc<T>>(pc[c_off[i * n + j]]) : DotAcc<T>(0)));
            else
              po[i * n + j] = static_cast<T>(y);
          }
        }
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "MatMul", 1, matmul);
KPT_REGISTER_OP("", "Gemm", 1, gemm);

}  // namespace kpt::ops
