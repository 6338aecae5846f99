// ConstantOfShape and EyeLike: tensors built from a shape rather than from data.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void constant_of_shape(KernelContext& ctx) {
  const Dims dims = ctx.input(0).to_i64_vector();
  for (int64_t d : dims)
    ctx.check(d >= 0, [&] { return "shape " + dims_to_string(dims) + " must be non-negative"; });
  Tensor value = Tensor::scalar<float>(DType::F32, 0.0f);
  if (const Tensor* v = ctx.node().attr_tensor("value")) {
    ctx.check(v->numel() == 1, [&] { return "value must have one element, got " + v->describe(); });
    value = *v;
  }
  const std::vector<int64_t> offsets = tensor_ops::offset_buffer(element_count(dims));
  ctx.set_output(0, tensor_ops::take_elements(value, dims, offsets));
}

void eye_like(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.check(x.rank() == 2, [&] { return "input must be 2-D, got " + x.describe(); });
  const DType dtype =
      ctx.node().has_attr("dtype") ? static_cast<DType>(ctx.attr_int("dtype", 1)) : x.dtype();
  ctx.check(is_valid_dtype(static_cast<int32_t>(dtype)) && dtype != DType::String,
            "dtype " + std::to_string(static_cast<int>(dtype)) + " is not a numeric type");
  const int64_t k = ctx.attr_int("k", 0);
  const int64_t rows = x.dims()[0], cols = x.dims()[1];
  Tensor eye(DType::F64, x.dims());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r + k;
    if (c >= 0 && c < cols) eye.data<double>()[r * cols + c] = 1.0;
  }
  ctx.set_output(0, cast_tensor(eye, dtype));
}

}  // namespace

KPT_REGISTER_OP("", "ConstantOfShape", 9, constant_of_shape);
KPT_REGISTER_OP("", "EyeLike", 9, eye_like);

}  // namespace kpt::ops
