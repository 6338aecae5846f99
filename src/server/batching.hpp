#pragma once
// Concatenating requests along dim 0 and splitting a batched result back, for dynamic batching.
#include <map>
#include <string>
#include <vector>

#include "kpt/tensor.hpp"

namespace kpt::server {

// True when `a` and `b` can share a batch: the same input names and dtypes, and the same dims
// apart from dim 0.
bool batch_compatible(const std::map<std::string, Tensor>& a,
                      const std::map<std::string, Tensor>& b);

// Concatenates each input along dim 0 over `parts` (all batch-compatible).
std::map<std::string, Tensor> concat_batch(
    const std::vector<const std::map<std::string, Tensor>*>& parts);

// Rows [begin, begin + count) of `t` along dim 0, as a tensor of its own.
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count);

}  // namespace kpt::server
