#pragma once
#include <string>

#include "kpt/value.hpp"

namespace kpt::cli {

// "f32[1,1000] min -3.2 max 4.1 mean 0.01" (first values for strings, item count for sequences).
std::string summarize(const Value& v);

}  // namespace kpt::cli
