#pragma once
// What pass tests check again and again: a rewritten graph computes what the original did.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/value.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/executor.hpp"
#include "tests/testing/ir_builders.hpp"

namespace kpt::testing {

inline int count_ops(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes) c += n.op_type == op;
  return c;
}

// The first node of type `op`, or nullptr.
inline const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

// Every float output of `got` within tol * (1 + |want|) of `want` (NaN only where `want` has
// NaN), with the same dims and type; one failure per output.
inline void expect_outputs_close(const std::vector<Value>& want, const std::vector<Value>& got,
                                 double tol) {
  EXPECT_EQ(want.size(), got.size());
  for (size_t o = 0; o < want.size() && o < got.size(); ++o) {
    const Tensor& w = want[o].tensor;
    const Tensor& t = got[o].tensor;
    EXPECT_EQ(w.dims(), t.dims());
    EXPECT_EQ(w.dtype(), t.dtype());
    if (w.dims() != t.dims() || w.dtype() != t.dtype()) continue;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const float a = w.data<float>()[i], b = t.data<float>()[i];
      if (std::isnan(a) && std::isnan(b)) continue;
      if (!(std::abs(a - b) <= tol * (1 + std::abs(a)))) {
        ADD_FAILURE() << "output " << o << " element " << i << ": " << a << " vs " << b;
        break;
      }
    }
  }
}

// Optimizes a copy at Extended and checks its outputs against the original's on random inputs
// (one per graph input, in order, shapes as declared).
inline ir::Graph optimize_and_compare(ir::Graph reference, double tol = 1e-5) {
  ir::sort_and_verify(reference);
  ir::Graph optimized = reference;
  passes::optimize(optimized, OptimizationLevel::Extended);
  std::vector<Value> inputs;
  uint32_t seed = 11;
  for (const auto& in : reference.inputs) {
    Dims d;
    for (const auto& dim : *in.type.shape) d.push_back(dim.value);
    inputs.push_back(Value::of(random_f32(d, seed++)));
  }
  expect_outputs_close(runtime::run_graph(reference, inputs), runtime::run_graph(optimized, inputs),
                       tol);
  return optimized;
}

}  // namespace kpt::testing
