#pragma once
// Giving a graph's dynamic input dims concrete sizes before shape inference.
#include <map>
#include <string>
#include <vector>

#include "ir/graph.hpp"

namespace kpt::analysis {

// Sets the shapes of the named inputs (fails for a name that is not an input, or a rank or
// fixed dim that does not match), learns the value of each symbol those inputs declared
// ("batch" = 8), and gives every other input dim with a learned symbol its value.
// Returns the symbol values learned.
std::map<std::string, int64_t> bind_input_shapes(ir::Graph& g,
                                                 const std::map<std::string, Dims>& shapes);

// Gives every input dim that is still not known the size `value` (1 by default). Returns the
// dims so bound, as "input[axis]" or the symbol name, for reporting.
std::vector<std::string> bind_unknown_dims(ir::Graph& g, int64_t value = 1);

}  // namespace kpt::analysis
