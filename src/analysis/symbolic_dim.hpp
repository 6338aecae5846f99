#pragma once
// Arithmetic on dims that may be symbolic, so that shape computations of exported models
// ("batch" * "seq", 768 / 12) keep their meaning instead of turning unknown. A symbolic
// product is spelled as its factors joined by '*', a numeric coefficient first
// ("12*batch*seq"); sums are parenthesized atoms ("(seq+1)"). A dim that is unknown and
// unnamed (symbol "") stays unknown through any arithmetic.
#include <optional>

#include "ir/graph.hpp"

namespace kpt::analysis {

// Elements of shape-valued tensors may be negative (-1 in a Reshape target, negative axes or
// Slice starts) while ir::Dim calls only values >= 0 known; a negative element is therefore
// spelled as its decimal text in `symbol` ("-1"). These two convert an element either way.
ir::Dim int_dim(int64_t v);
std::optional<int64_t> dim_int(const ir::Dim& d);

ir::Dim dim_mul(const ir::Dim& a, const ir::Dim& b);
ir::Dim dim_add(const ir::Dim& a, const ir::Dim& b);
ir::Dim dim_sub(const ir::Dim& a, const ir::Dim& b);
// Exact division where it can be shown (known values, or factors that cancel); for known
// values it is floor division as ONNX Div on integers. Unknown otherwise.
ir::Dim dim_div(const ir::Dim& a, const ir::Dim& b);
// Product of all dims (1 for a scalar).
ir::Dim dim_product(const ir::Shape& s);
// True when both are the same known value or the same named symbol.
bool same_dim(const ir::Dim& a, const ir::Dim& b);
// Numpy broadcast of two dims; fails when two known dims differ and neither is 1. Two different
// symbols broadcast to an unknown dim (either may be 1).
ir::Dim broadcast_dim(const ir::Dim& a, const ir::Dim& b);
ir::Shape broadcast_shapes(const ir::Shape& a, const ir::Shape& b);
// The known values of a shape, or nullopt when a dim is not known.
std::optional<std::vector<int64_t>> known_values(const ir::Shape& s);
ir::Shape shape_of_dims(const std::vector<int64_t>& dims);
bool fully_known(const ir::Shape& s);

}  // namespace kpt::analysis
