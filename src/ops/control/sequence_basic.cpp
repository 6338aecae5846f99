// The elementary sequence ops: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt,
// SequenceErase, SequenceLength.
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

const Value& sequence_input(const KernelContext& ctx, size_t i) {
  const Value& v = ctx.value(i);
  if (!v.is_sequence()) ctx.fail("input " + std::to_string(i) + " must be a sequence");
  return v;
}

// A position input (scalar int32/int64) mapped into [0, size) or [0, size] when `allow_end`.
int64_t position(const KernelContext& ctx, size_t i, int64_t size, bool allow_end) {
  const Tensor& p = ctx.input(i);
  ctx.check(p.dtype() == DType::I32 || p.dtype() == DType::I64,
            [&] { return "position must be int32 or int64, got " + p.describe(); });
  ctx.check(p.numel() == 1, [&] { return "position must be a scalar, got " + p.describe(); });
  int64_t pos = p.get_i64(0);
  const int64_t hi = allow_end ? size : size - 1;
  ctx.check(pos >= -size && pos <= hi, "position " + std::to_string(pos) + " is outside [" +
                                           std::to_string(-size) + ", " + std::to_string(hi) +
                                           "] for a sequence of " + std::to_string(size));
  if (pos < 0) pos += size;
  return pos;
}

void sequence_empty(KernelContext& ctx) {
  const int64_t code = ctx.attr_int("dtype", static_cast<int64_t>(DType::F32));
  ctx.check(is_valid_dtype(static_cast<int32_t>(code)),
            "dtype " + std::to_string(code) + " is not a valid element type");
  ctx.set_output_value(0, Value::of_sequence({}, static_cast<DType>(code)));
}

void sequence_construct(KernelContext& ctx) {
  ctx.check(ctx.num_inputs() >= 1, "needs at least one input tensor");
  std::vector<Tensor> items;
  const DType dt = ctx.input(0).dtype();
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.input(i);
    ctx.check(t.dtype() == dt, [&] {
      return "all inputs must share one element type; input " + std::to_string(i) + " is " +
             t.describe();
    });
    items.push_back(t);
  }
  ctx.set_output_value(0, Value::of_sequence(std::move(items), dt));
}

void sequence_insert(KernelContext& ctx) {
  const Value& s = sequence_input(ctx, 0);
  const Tensor& t = ctx.input(1);
  ctx.check(s.sequence_dtype == DType::Undefined || s.sequence_dtype == t.dtype(), [&] {
    return "cannot insert " + t.describe() + " into a sequence of " +
           std::string(dtype_name(s.sequence_dtype));
  });
  const int64_t n = static_cast<int64_t>(s.sequence.size());
  const int64_t pos = ctx.has_input(2) ? position(ctx, 2, n, true) : n;
  std::vector<Tensor> items = s.sequence;
  items.insert(items.begin() + pos, t);
  ctx.set_output_value(0, Value::of_sequence(std::move(items), t.dtype()));
}

void sequence_at(KernelContext& ctx) {
  const Value& s = sequence_input(ctx, 0);
  const int64_t n = static_cast<int64_t>(s.sequence.size());
  ctx.check(n > 0, "cannot take an element of an empty sequence");
  ctx.set_output(0, s.sequence[static_cast<size_t>(position(ctx, 1, n, false))]);
}

void sequence_erase(KernelContext& ctx) {
  const Value& s = sequence_input(ctx, 0);
  const int64_t n = static_cast<int64_t>(s.sequence.size());
  ctx.check(n > 0, "cannot erase from an empty sequence");
  const int64_t pos = ctx.has_input(1) ? position(ctx, 1, n, false) : n - 1;
  std::vector<Tensor> items = s.sequence;
  items.erase(items.begin() + pos);
  ctx.set_output_value(0, Value::of_sequence(std::move(items), s.sequence_dtype));
}

void sequence_length(KernelContext& ctx) {
  const Value& s = sequence_input(ctx, 0);
  ctx.set_output(0, Tensor::scalar<int64_t>(DType::I64, static_cast<int64_t>(s.sequence.size())));
}

}  // namespace

KPT_REGISTER_OP("", "SequenceEmpty", 1, sequence_empty);
KPT_REGISTER_OP("", "SequenceConstruct", 1, sequence_construct);
KPT_REGISTER_OP("", "SequenceInsert", 1, sequence_insert);
KPT_REGISTER_OP("", "SequenceAt", 1, sequence_at);
KPT_REGISTER_OP("", "SequenceErase", 1, sequence_erase);
KPT_REGISTER_OP("", "SequenceLength", 1, sequence_length);

}  // namespace kpt::ops
