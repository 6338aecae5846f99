// Det: determinant of each square matrix in the last two axes, by LU decomposition with
// partial pivoting in double.
#include <cmath>
#include <utility>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

double determinant(std::vector<double> a, int64_t n) {
  double det = 1;
  for (int64_t c = 0; c < n; ++c) {
    int64_t pivot = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[pivot * n + c])) pivot = r;
    if (a[pivot * n + c] == 0) return 0;
    if (pivot != c) {
      for (int64_t j = 0; j < n; ++j) std::swap(a[c * n + j], a[pivot * n + j]);
      det = -det;
    }
    det *= a[c * n + c];
    for (int64_t r = c + 1; r < n; ++r) {
      const double f = a[r * n + c] / a[c * n + c];
      for (int64_t j = c; j < n; ++j) a[r * n + j] -= f * a[c * n + j];
    }
  }
  return det;
}

void det(KernelContext& ctx) {
  const Tensor& original = ctx.input(0);
  const Tensor x = to_compute(original);
  ctx.check(x.rank() >= 2 && x.dims()[x.rank() - 1] == x.dims()[x.rank() - 2],
            [&] { return "input must be [..., M, M], got " + x.describe(); });
  const int64_t n = x.dims()[x.rank() - 1];
  const Dims out_dims(x.dims().begin(), x.dims().end() - 2);
  Tensor out(x.dtype(), out_dims);
  dispatch_float(x.dtype(), "Det", [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t b = 0; b < out.numel(); ++b) {
      std::vector<double> a(static_cast<size_t>(n * n));
      for (int64_t i = 0; i < n * n; ++i) a[i] = px[b * n * n + i];
      po[b] = static_cast<T>(determinant(std::move(a), n));
    }
  });
  ctx.set_output(0, from_compute(out, original.dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "Det", 1, det);

}  // namespace kpt::ops
