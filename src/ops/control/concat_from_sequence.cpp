// ConcatFromSequence: joins a sequence's tensors along an existing axis, or along a new one
// (new_axis=1, which also allows axis == rank).
#include "ops/control/tensor_pieces.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void concat_from_sequence(KernelContext& ctx) {
  const Value& s = ctx.value(0);
  if (!s.is_sequence()) ctx.fail("input must be a sequence");
  ctx.check(!s.sequence.empty(), "cannot concatenate an empty sequence");
  const bool new_axis = ctx.attr_int("new_axis", 0) != 0;
  if (!ctx.node().has_attr("axis")) ctx.fail("attribute 'axis' is required");
  const int64_t rank = static_cast<int64_t>(s.sequence[0].rank());
  const int64_t axis = normalize_axis(ctx.attr_int("axis", 0), new_axis ? rank + 1 : rank);
  ctx.set_output(0, new_axis ? control::stack_axis(s.sequence, static_cast<size_t>(axis))
                             : control::concat_axis(s.sequence, static_cast<size_t>(axis)));
}

}  // namespace

KPT_REGISTER_OP("", "ConcatFromSequence", 1, concat_from_sequence);

}  // namespace kpt::ops
