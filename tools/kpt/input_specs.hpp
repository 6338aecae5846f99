#pragma once
// --input NAME=FILE.npy | NAME=DIMS, shared by the subcommands that run models.
#include <map>
#include <string>
#include <vector>

#include "kpt/session.hpp"

namespace kpt::cli {

// NAME=FILE.npy reads a file; NAME=DIMS (like 8x128) asks for valid random values of that
// shape (runtime::make_valid_inputs); inputs not named get valid random values when their
// dims follow from the others.
std::map<std::string, Tensor> make_inputs(const Session& s, const std::vector<std::string>& specs,
                                          uint64_t seed = 1);

}  // namespace kpt::cli
