#include "analysis/infer_util.hpp"

#include "kpt/error.hpp"

namespace kpt::analysis {

bool has_input(const InferContext& ctx, size_t i) {
  return i < ctx.node.inputs.size() && !ctx.node.inputs[i].empty();
}

const ir::Type* tensor_input(const InferContext& ctx, size_t i) {
  if (!has_input(ctx, i) || i >= ctx.inputs.size() || !ctx.inputs[i]) return nullptr;
  const ir::Type* t = ctx.inputs[i];
  return t->kind == ir::Type::Kind::Tensor ? t : nullptr;
}

DType input_dtype(const InferContext& ctx, size_t i) {
  const ir::Type* t = tensor_input(ctx, i);
  return t ? t->elem : DType::Undefined;
}

std::optional<ir::Shape> input_shape(const InferContext& ctx, size_t i) {
  const ir::Type* t = tensor_input(ctx, i);
  if (!t) return std::nullopt;
  return t->shape;
}

std::optional<size_t> input_rank(const InferContext& ctx, size_t i) {
  auto s = input_shape(ctx, i);
  if (!s) return std::nullopt;
  return s->size();
}

std::optional<ir::Shape> input_value(const InferContext& ctx, size_t i) {
  if (!has_input(ctx, i)) return std::nullopt;
  if (i < ctx.input_values.size() && ctx.input_values[i]) return *ctx.input_values[i];
  return std::nullopt;
}

std::optional<std::vector<int64_t>> input_ints(const InferContext& ctx, size_t i) {
  auto v = input_value(ctx, i);
  if (!v) return std::nullopt;
  return known_values(*v);
}

void set_output(InferContext& ctx, size_t i, DType dtype, std::optional<ir::Shape> shape) {
  if (i >= ctx.outputs.size()) return;
  ctx.outputs[i] = ir::Type::tensor(dtype, std::move(shape));
}

void set_output_value(InferContext& ctx, size_t i, ir::Shape value) {
  if (ctx.output_values.size() < ctx.outputs.size()) ctx.output_values.resize(ctx.outputs.size());
  if (i < ctx.output_values.size()) ctx.output_values[i] = std::move(value);
}

void same_as_input(InferContext& ctx, size_t out, size_t in) {
  const ir::Type* t = tensor_input(ctx, in);
  if (t) set_output(ctx, out, t->elem, t->shape);
}

std::optional<std::vector<int64_t>> ints_from_attr_or_input(const InferContext& ctx,
                                                            const char* attr, size_t input) {
  if (ctx.node.has_attr(attr)) return ctx.node.attr_ints(attr);
  if (!has_input(ctx, input)) return std::vector<int64_t>{};
  return input_ints(ctx, input);
}

int64_t normalize_axis_for(int64_t axis, size_t rank) {
  const auto r = static_cast<int64_t>(rank);
  check(axis >= -r && axis < r,
        "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

}  // namespace kpt::analysis
