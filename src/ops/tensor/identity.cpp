// Identity (tensors, sequences and optionals pass through) and Dropout at inference.
#include "ops/tensor/tensor_util.hpp"

namespace kpt::ops {
namespace {

void identity(KernelContext& ctx) {
  ctx.set_output_value(0, ctx.value(0));
}

void dropout(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  bool training = false;
  double ratio = 0.5;
  if (ctx.opset() >= 12) {
    if (ctx.has_input(1)) ratio = ctx.input(1).get_f64(0);
    if (ctx.has_input(2)) training = ctx.input(2).get_i64(0) != 0;
  } else {
    ratio = ctx.attr_float("ratio", 0.5f);
    if (ctx.opset() < 7) training = ctx.attr_int("is_test", 0) == 0;
  }
  // Random dropping cannot be reproduced; with ratio 0 training mode drops nothing.
  if (training && ratio != 0.0)
    ctx.unsupported("Dropout in training mode with ratio " + std::to_string(ratio) +
                    " is not supported (inference only)");
  ctx.set_output(0, x);
  if (ctx.wants_output(1)) {
    Tensor mask(DType::Bool, x.dims());
    for (int64_t i = 0; i < mask.numel(); ++i) mask.data<bool>()[i] = true;
    // Before opset 10 the mask had the input's element type.
    ctx.set_output(1, ctx.opset() >= 10 ? mask : cast_tensor(mask, x.dtype()));
  }
}

}  // namespace

KPT_REGISTER_OP("", "Identity", 1, identity);
KPT_REGISTER_OP("", "Dropout", 1, dropout);

}  // namespace kpt::ops
