#pragma once
// Helpers shared by the per-op infer functions (infer_*.cpp): reading input types and
// shape-valued inputs, writing output types.
#include <optional>
#include <vector>

#include "analysis/symbolic_dim.hpp"
#include "ops/registry.hpp"

namespace kpt::analysis {

using ops::InferContext;

bool has_input(const InferContext& ctx, size_t i);
// Input i's tensor type, or nullptr when omitted, unknown or not a tensor.
const ir::Type* tensor_input(const InferContext& ctx, size_t i);
DType input_dtype(const InferContext& ctx, size_t i);  // Undefined when unknown
std::optional<ir::Shape> input_shape(const InferContext& ctx, size_t i);
std::optional<size_t> input_rank(const InferContext& ctx, size_t i);

// Elements of a shape-valued input (a constant or a value computed by shape arithmetic),
// each as a dim (negative numbers as int_dim spells them); nullopt when not known.
std::optional<ir::Shape> input_value(const InferContext& ctx, size_t i);
// Same, when every element is a known integer.
std::optional<std::vector<int64_t>> input_ints(const InferContext& ctx, size_t i);

void set_output(InferContext& ctx, size_t i, DType dtype, std::optional<ir::Shape> shape);
void set_output_value(InferContext& ctx, size_t i, ir::Shape value);
// Output i has the dtype and shape of input j (when known).
void same_as_input(InferContext& ctx, size_t out, size_t in);

// Integer attribute lists, or the given input for opsets that moved them to inputs (axes of
// Squeeze/Unsqueeze/Reduce*, split of Split).
std::optional<std::vector<int64_t>> ints_from_attr_or_input(const InferContext& ctx,
                                                            const char* attr, size_t input);

int64_t normalize_axis_for(int64_t axis, size_t rank);  // fails when out of range

}  // namespace kpt::analysis
