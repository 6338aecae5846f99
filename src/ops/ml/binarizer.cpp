// ai.onnx.ml Binarizer: 1 where the input is greater than `threshold`, else 0 (same type).
#include <string>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void binarizer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType t = x.dtype();
  if (t != DType::F32 && t != DType::F64 && t != DType::I64 && t != DType::I32)
    ctx.fail("input X has element type " + std::string(dtype_name(t)) +
             "; expected float, double, int64 or int32");
  const double threshold = ctx.attr_float("threshold", 0.0f);
  Tensor y(t, x.dims());
  dispatch(t, "Binarizer", [&]<typename T>() {
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      out[i] = static_cast<double>(in[i]) > threshold ? T(1) : T(0);
  });
  ctx.set_output(0, std::move(y));
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.ml", "Binarizer", 1, binarizer);

}  // namespace kpt::ops
