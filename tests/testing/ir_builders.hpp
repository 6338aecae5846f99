#pragma once
// IR-level builders the pass and kernel tests share: a node with its inputs and outputs, and
// fresh random float tensors.
#include <random>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/tensor.hpp"

namespace kpt::testing {

inline ir::Node make_node(std::string op, std::vector<std::string> in, std::vector<std::string> out,
                          int opset = 17, std::string domain = "") {
  ir::Node n;
  n.op_type = std::move(op);
  n.domain = std::move(domain);
  n.name = out.empty() ? "" : out[0] + "_node";
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// Uniform in [lo, hi) from `seed`: tests print or fix the seed so a failure can be replayed.
inline Tensor random_f32(Dims dims, uint32_t seed, float lo = -2, float hi = 2) {
  Tensor t(DType::F32, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace kpt::testing
