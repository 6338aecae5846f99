#pragma once
#include <string>

#include "kpt/tensor.hpp"

namespace kpt {

// NumPy .npy files (format versions 1-3, little-endian, C order) for the numeric and bool
// dtypes; f16 as '<f2'; bf16 and other storage-only floats are written as f32.
Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& t);

}  // namespace kpt
