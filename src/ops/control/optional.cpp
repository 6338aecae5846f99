// Optional, OptionalHasElement, OptionalGetElement. An empty optional is Value::none(); a
// present one is the wrapped value flagged optional.
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void optional_kernel(KernelContext& ctx) {
  if (!ctx.has_input(0)) {
    const ir::Attribute* type = ctx.node().attr("type");
    if (!type) ctx.fail("an Optional without input needs the 'type' attribute");
    ctx.set_output_value(0, Value::none());
    return;
  }
  Value v = ctx.value(0);
  v.optional = true;
  ctx.set_output_value(0, std::move(v));
}

void optional_has_element(KernelContext& ctx) {
  const bool has = ctx.has_input(0) && !ctx.value(0).is_none();
  ctx.set_output(0, Tensor::scalar<bool>(DType::Bool, has));
}

void optional_get_element(KernelContext& ctx) {
  const Value& v = ctx.value(0);
  if (v.is_none()) ctx.fail("the optional input is empty");
  Value out = v;
  out.optional = false;
  ctx.set_output_value(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("", "Optional", 1, optional_kernel);
KPT_REGISTER_OP("", "OptionalHasElement", 1, optional_has_element);
KPT_REGISTER_OP("", "OptionalGetElement", 1, optional_get_element);

}  // namespace kpt::ops
