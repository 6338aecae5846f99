// ai.onnx.ml ArrayFeatureExtractor: selects elements along the last axis of X by the indices
// in Y. The output keeps X's leading dims and has one last dim per index; a 1-D X gives
// [1, count].
#include <cstring>
#include <string>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void array_feature_extractor(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.input(1);
  if (y.dtype() != DType::I64)
    ctx.fail("indices input Y has element type " + std::string(dtype_name(y.dtype())) +
             "; expected int64");
  if (x.rank() == 0) ctx.fail("input X is a scalar; expected a tensor of rank >= 1");
  const int64_t last = x.dims().back();
  const int64_t count = y.numel();
  std::vector<int64_t> index(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t k = y.data<int64_t>()[i];
    if (k < 0 || k >= last)
      ctx.fail("index " + std::to_string(k) + " at position " + std::to_string(i) +
               " of Y is out of range for the last axis of X " + x.describe() +
               " (expected 0 <= index < " + std::to_string(last) + ")");
    index[static_cast<size_t>(i)] = k;
  }
  Dims out_dims;
  if (x.rank() == 1) {
    out_dims = {1, count};
  } else {
    out_dims.assign(x.dims().begin(), x.dims().end() - 1);
    out_dims.push_back(count);
  }
  Tensor out(x.dtype(), out_dims);
  const int64_t rows =
      last == 0 ? element_count(Dims(x.dims().begin(), x.dims().end() - 1)) : x.numel() / last;
  if (x.dtype() == DType::String) {
    const auto& in = x.strings();
    auto& dst = out.strings();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < count; ++j)
        dst[static_cast<size_t>(r * count + j)] =
            in[static_cast<size_t>(r * last + index[static_cast<size_t>(j)])];
  } else {
    const size_t es = dtype_size(x.dtype());
    if (es == 0) ctx.unsupported("element type " + std::string(dtype_name(x.dtype())));
    const auto* in = static_cast<const unsigned char*>(x.raw());
    auto* dst = static_cast<unsigned char*>(out.raw());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < count; ++j)
        std::memcpy(dst + static_cast<size_t>(r * count + j) * es,
                    in + static_cast<size_t>(r * last + index[static_cast<size_t>(j)]) * es, es);
  }
  ctx.set_output(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.ml", "ArrayFeatureExtractor", 1, array_feature_extractor);

}  // namespace kpt::ops
