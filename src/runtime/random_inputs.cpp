#include "runtime/random_inputs.hpp"

#include <random>

#include "core/cast.hpp"
#include "kpt/error.hpp"

namespace kpt::runtime {

Dims parse_dims(const std::string& text) {
  Dims dims;
  if (text.empty()) return dims;
  size_t start = 0;
  while (start <= text.size()) {
    size_t x = text.find('x', start);
    std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    check(!part.empty() && part.find_first_not_of("0123456789") == std::string::npos,
          "bad dims '" + text + "': expected sizes joined by 'x', like 8x128");
    dims.push_back(std::stoll(part));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return dims;
}

Tensor random_tensor(DType dtype, const Dims& dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensor f(DType::F64, dims);
  const int64_t n = f.numel();
  if (is_float(dtype)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = u(rng);
  } else if (dtype == DType::Bool) {
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = static_cast<double>(rng() & 1);
  } else {
    check(is_integer(dtype), "cannot make random values of type " + std::string(dtype_name(dtype)));
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = static_cast<double>(rng() % 10);
  }
  return cast_tensor(f, dtype);
}

Tensor random_input(const IoInfo& info, const std::map<std::string, int64_t>& dim_values,
                    uint64_t seed) {
  check(info.kind == "tensor", "input '" + info.name + "' is a " + info.kind +
                                   "; random values can only be made for tensors");
  check(info.has_shape,
        "input '" + info.name + "' declares no shape; give it with --shape " + info.name + "=DIMS");
  Dims dims = info.dims;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] >= 0) continue;
    auto it = dim_values.find(info.symbols[i]);
    dims[i] = it == dim_values.end() ? 1 : it->second;
  }
  // A mask input attends everywhere: random values would mask positions at random.
  if (info.name.find("mask") != std::string::npos && info.dtype != DType::String) {
    Tensor ones(DType::F64, dims);
    for (int64_t i = 0; i < ones.numel(); ++i) ones.data<double>()[i] = 1.0;
    return cast_tensor(ones, info.dtype);
  }
  return random_tensor(info.dtype, dims, seed);
}

}  // namespace kpt::runtime
