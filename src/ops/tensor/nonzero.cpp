// NonZero: coordinates of the non-zero elements, one column per element, row-major order.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void nonzero(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> hits;
  if (x.dtype() == DType::String) {
    for (int64_t i = 0; i < x.numel(); ++i)
      if (!x.strings()[static_cast<size_t>(i)].empty()) hits.push_back(i);
  } else {
    const Tensor c = to_compute(x);
    dispatch(c.dtype(), "NonZero", [&]<typename T>() {
      const T* p = c.data<T>();
      for (int64_t i = 0; i < c.numel(); ++i)
        if (p[i] != T{}) hits.push_back(i);
    });
  }
  // A scalar is treated as a 1-element vector (as numpy and onnxruntime do).
  const Dims dims = x.rank() == 0 ? Dims{1} : x.dims();
  const int64_t rank = static_cast<int64_t>(dims.size());
  const int64_t n = static_cast<int64_t>(hits.size());
  Tensor out(DType::I64, {rank, n});
  std::vector<int64_t> idx;
  for (int64_t j = 0; j < n; ++j) {
    tensor_ops::unravel(hits[static_cast<size_t>(j)], dims, idx);
    for (int64_t d = 0; d < rank; ++d) out.data<int64_t>()[d * n + j] = idx[static_cast<size_t>(d)];
  }
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "NonZero", 9, nonzero);

}  // namespace kpt::ops
