#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "kpt/session.hpp"

namespace kpt::runtime {

// Parses "8x128" (or "" for a scalar) into dims.
Dims parse_dims(const std::string& text);

// Random values for a declared input: floats uniform in [-1, 1), integers in [0, 10),
// bools 0/1; inputs named like "attention_mask" are all ones. Dynamic dims take the value given for
// their symbol in `dim_values`, else 1.
Tensor random_input(const IoInfo& info, const std::map<std::string, int64_t>& dim_values,
                    uint64_t seed);
Tensor random_tensor(DType dtype, const Dims& dims, uint64_t seed);

}  // namespace kpt::runtime
