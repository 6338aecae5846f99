#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kpt/session.hpp"

namespace kpt::ir {
struct Graph;
}

namespace kpt::runtime {

// An attention-mask-like input: its name contains "mask" (numbers or bools, 1 = attend).
bool is_mask_input(const IoInfo& info);

// Parses "8x128" (or "" for a scalar) into dims.
Dims parse_dims(const std::string& text);

// Random values for a declared input: floats uniform in [-1, 1), integers in [0, 10),
// bools 0/1; inputs named like "attention_mask" are all ones. Dynamic dims take the value given for
// their symbol in `dim_values`, else 1.
Tensor random_input(const IoInfo& info, const std::map<std::string, int64_t>& dim_values,
                    uint64_t seed);
// Integers are drawn from [0, int_limit).
Tensor random_tensor(DType dtype, const Dims& dims, uint64_t seed, int64_t int_limit = 10);

// The number of rows of the smallest constant table that `value` indexes: it (or what Cast,
// Reshape, Unsqueeze, Squeeze, Flatten, Identity or Expand make of it) is the indices input of a
// Gather whose data is an initializer. nullopt when it indexes no constant table.
std::optional<int64_t> index_limit(const ir::Graph& g, const std::string& value);

// Concrete dims for every input: `shapes` (from NAME=DIMS) and `given` tensors (from files) fix
// the symbols of their declared dims (input_ids=8x128 fixes batch and seq), and every other
// input takes its dims from its declaration with those symbols filled in. Fails naming the input
// and its declared shape when a dim stays unknown, and when a given shape contradicts a
// declaration or another input.
std::map<std::string, Dims> resolve_input_dims(const std::vector<IoInfo>& inputs,
                                               const std::map<std::string, Dims>& shapes,
                                               const std::map<std::string, Dims>& given);

// Inputs that are valid for the model: `given` tensors as they are; the rest random with the
// dims from resolve_input_dims, where integer inputs that index a constant table stay within it
// (index_limit), and mask inputs (name contains "mask") are all ones so every position attends.
std::map<std::string, Tensor> make_valid_inputs(const ir::Graph& g,
                                                const std::vector<IoInfo>& inputs,
                                                const std::map<std::string, Dims>& shapes,
                                                const std::map<std::string, Tensor>& given,
                                                uint64_t seed = 1);

}  // namespace kpt::runtime
