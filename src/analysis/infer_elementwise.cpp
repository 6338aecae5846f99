// Inference for ops whose output has the broadcast shape of their inputs: unary math,
// activations and normalizations, binary and variadic arithmetic, comparisons, Where, Cast.
// Integer arithmetic also runs on shape values, so that computed dims stay known or symbolic.
#include "analysis/infer_util.hpp"

namespace kpt::analysis {
namespace {

void infer_same(InferContext& ctx) {
  same_as_input(ctx, 0, 0);
  // Identity-like ops carry shape values through.
  if (ctx.node.op_type == "Identity") {
    if (auto v = input_value(ctx, 0)) set_output_value(ctx, 0, *v);
  }
}

void infer_bool_unary(InferContext& ctx) {
  set_output(ctx, 0, DType::Bool, input_shape(ctx, 0));
}

void infer_dropout(InferContext& ctx) {
  same_as_input(ctx, 0, 0);
  set_output(ctx, 1, DType::Bool, input_shape(ctx, 0));
}

// LayerNormalization's optional Mean and InvStdDev outputs keep the leading dims and reduce
// the normalized ones to 1, in the stash type.
void infer_layer_norm(InferContext& ctx) {
  same_as_input(ctx, 0, 0);
  auto shape = input_shape(ctx, 0);
  const auto stash = static_cast<DType>(ctx.node.attr_int("stash_type", 1));
  std::optional<ir::Shape> stats;
  if (shape) {
    int64_t axis = normalize_axis_for(ctx.node.attr_int("axis", -1), shape->size());
    stats = *shape;
    for (size_t k = static_cast<size_t>(axis); k < stats->size(); ++k) (*stats)[k] = ir::Dim::of(1);
  }
  set_output(ctx, 1, stash, stats);
  set_output(ctx, 2, stash, stats);
}

// Broadcast shape of every present input, or nullopt when one is unknown.
std::optional<ir::Shape> broadcast_inputs(const InferContext& ctx, size_t first = 0) {
  ir::Shape out;
  for (size_t i = first; i < ctx.node.inputs.size(); ++i) {
    if (!has_input(ctx, i)) continue;
    auto s = input_shape(ctx, i);
    if (!s) return std::nullopt;
    out = broadcast_shapes(out, *s);
  }
  return out;
}

DType first_known_dtype(const InferContext& ctx, size_t first = 0) {
  for (size_t i = first; i < ctx.node.inputs.size(); ++i) {
    DType d = input_dtype(ctx, i);
    if (d != DType::Undefined) return d;
  }
  return DType::Undefined;
}

// Elementwise integer arithmetic on shape values (equal lengths, or one of length 1).
template <typename Op>
void value_arithmetic(InferContext& ctx, Op op) {
  auto a = input_value(ctx, 0), b = input_value(ctx, 1);
  if (!a || !b) return;
  if (a->size() != b->size() && a->size() != 1 && b->size() != 1) return;
  const size_t n = std::max(a->size(), b->size());
  ir::Shape out(n);
  for (size_t k = 0; k < n; ++k) {
    out[k] = op((*a)[a->size() == 1 ? 0 : k], (*b)[b->size() == 1 ? 0 : k]);
  }
  set_output_value(ctx, 0, out);
}

void infer_binary_same_type(InferContext& ctx) {
  set_output(ctx, 0, first_known_dtype(ctx), broadcast_inputs(ctx));
  if (!is_integer(input_dtype(ctx, 0))) return;
  const std::string& op = ctx.node.op_type;
  if (op == "Add") value_arithmetic(ctx, dim_add);
  if (op == "Sub") value_arithmetic(ctx, dim_sub);
  if (op == "Mul") value_arithmetic(ctx, dim_mul);
  if (op == "Div") value_arithmetic(ctx, dim_div);
}

// Pow's result has the base's type (exponent may differ since opset 12).
void infer_pow(InferContext& ctx) {
  set_output(ctx, 0, input_dtype(ctx, 0), broadcast_inputs(ctx));
}

void infer_variadic(InferContext& ctx) {
  set_output(ctx, 0, first_known_dtype(ctx), broadcast_inputs(ctx));
  // Max/Min of known integers (clamping computed dims) stay exact.
  const bool is_max = ctx.node.op_type == "Max", is_min = ctx.node.op_type == "Min";
  if (!(is_max || is_min) || ctx.node.inputs.size() != 2) return;
  value_arithmetic(ctx, [&](const ir::Dim& a, const ir::Dim& b) {
    auto ia = dim_int(a), ib = dim_int(b);
    if (!ia || !ib) return ir::Dim{};
    return int_dim(is_max ? std::max(*ia, *ib) : std::min(*ia, *ib));
  });
}

void infer_compare(InferContext& ctx) {
  set_output(ctx, 0, DType::Bool, broadcast_inputs(ctx));
}

void infer_where(InferContext& ctx) {
  set_output(ctx, 0, first_known_dtype(ctx, 1), broadcast_inputs(ctx));
}

void infer_cast(InferContext& ctx) {
  const auto to = static_cast<DType>(ctx.node.attr_int("to", 0));
  set_output(ctx, 0, to, input_shape(ctx, 0));
  if (is_integer(to)) {
    if (auto v = input_value(ctx, 0)) set_output_value(ctx, 0, *v);
  }
}

void infer_cast_like(InferContext& ctx) {
  set_output(ctx, 0, input_dtype(ctx, 1), input_shape(ctx, 0));
  if (is_integer(input_dtype(ctx, 1))) {
    if (auto v = input_value(ctx, 0)) set_output_value(ctx, 0, *v);
  }
}

}  // namespace

#define KPT_SAME(op) KPT_REGISTER_INFER("", op, infer_same)
KPT_SAME("Identity");
KPT_SAME("Abs");
KPT_SAME("Neg");
KPT_SAME("Exp");
KPT_SAME("Log");
KPT_SAME("Sqrt");
KPT_SAME("Reciprocal");
KPT_SAME("Relu");
KPT_SAME("Sigmoid");
KPT_SAME("Tanh");
KPT_SAME("Erf");
KPT_SAME("Gelu");
KPT_SAME("Softmax");
KPT_SAME("LogSoftmax");
KPT_SAME("Hardmax");
KPT_SAME("Ceil");
KPT_SAME("Floor");
KPT_SAME("Round");
KPT_SAME("Sign");
KPT_SAME("Sin");
KPT_SAME("Cos");
KPT_SAME("Tan");
KPT_SAME("Asin");
KPT_SAME("Acos");
KPT_SAME("Atan");
KPT_SAME("Sinh");
KPT_SAME("Cosh");
KPT_SAME("Asinh");
KPT_SAME("Acosh");
KPT_SAME("Atanh");
KPT_SAME("HardSigmoid");
KPT_SAME("HardSwish");
KPT_SAME("LeakyRelu");
KPT_SAME("Elu");
KPT_SAME("Selu");
KPT_SAME("Celu");
KPT_SAME("Softplus");
KPT_SAME("Softsign");
KPT_SAME("Mish");
KPT_SAME("ThresholdedRelu");
KPT_SAME("Clip");
KPT_SAME("Shrink");
KPT_SAME("BitwiseNot");
KPT_SAME("Trilu");
KPT_SAME("LRN");
KPT_SAME("MeanVarianceNormalization");
KPT_SAME("BatchNormalization");
KPT_SAME("InstanceNormalization");
KPT_SAME("GroupNormalization");
KPT_SAME("RMSNormalization");
KPT_SAME("SimplifiedLayerNormalization");  // ONNX Runtime's, in the default domain
KPT_SAME("RotaryEmbedding");
KPT_SAME("SwiGLU");  // its inputs have one shape (no broadcasting)
KPT_SAME("LpNormalization");
KPT_SAME("CumSum");
KPT_SAME("ReverseSequence");
KPT_SAME("ScatterND");
KPT_SAME("ScatterElements");
KPT_SAME("Scatter");
#undef KPT_SAME

KPT_REGISTER_INFER("", "IsNaN", infer_bool_unary);
KPT_REGISTER_INFER("", "IsInf", infer_bool_unary);
KPT_REGISTER_INFER("", "Not", infer_bool_unary);
KPT_REGISTER_INFER("", "Dropout", infer_dropout);
KPT_REGISTER_INFER("", "LayerNormalization", infer_layer_norm);

KPT_REGISTER_INFER("", "Add", infer_binary_same_type);
KPT_REGISTER_INFER("", "Sub", infer_binary_same_type);
KPT_REGISTER_INFER("", "Mul", infer_binary_same_type);
KPT_REGISTER_INFER("", "Div", infer_binary_same_type);
KPT_REGISTER_INFER("", "Mod", infer_binary_same_type);
KPT_REGISTER_INFER("", "PRelu", infer_binary_same_type);
KPT_REGISTER_INFER("", "BitShift", infer_binary_same_type);
KPT_REGISTER_INFER("", "BitwiseAnd", infer_binary_same_type);
KPT_REGISTER_INFER("", "BitwiseOr", infer_binary_same_type);
KPT_REGISTER_INFER("", "BitwiseXor", infer_binary_same_type);
KPT_REGISTER_INFER("", "Pow", infer_pow);
KPT_REGISTER_INFER("", "Max", infer_variadic);
KPT_REGISTER_INFER("", "Min", infer_variadic);
KPT_REGISTER_INFER("", "Sum", infer_variadic);
KPT_REGISTER_INFER("", "Mean", infer_variadic);

KPT_REGISTER_INFER("", "Equal", infer_compare);
KPT_REGISTER_INFER("", "Less", infer_compare);
KPT_REGISTER_INFER("", "Greater", infer_compare);
KPT_REGISTER_INFER("", "LessOrEqual", infer_compare);
KPT_REGISTER_INFER("", "GreaterOrEqual", infer_compare);
KPT_REGISTER_INFER("", "And", infer_compare);
KPT_REGISTER_INFER("", "Or", infer_compare);
KPT_REGISTER_INFER("", "Xor", infer_compare);
KPT_REGISTER_INFER("", "Where", infer_where);

KPT_REGISTER_INFER("", "Cast", infer_cast);
KPT_REGISTER_INFER("", "CastLike", infer_cast_like);

}  // namespace kpt::analysis
