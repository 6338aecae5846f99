#pragma once
#include <vector>

#include "kpt/tensor.hpp"

namespace kpt {

// What flows along a graph edge at run time: a tensor, a sequence of tensors, or an empty
// optional. `optional` marks values typed optional(...) so OptionalHasElement etc. can tell.
struct Value {
  enum class Kind { None, Tensor, Sequence };
  Kind kind = Kind::None;
  Tensor tensor;
  std::vector<Tensor> sequence;
  DType sequence_dtype = DType::Undefined;  // element type, known even when empty
  bool optional = false;

  static Value of(Tensor t) {
    Value v;
    v.kind = Kind::Tensor;
    v.tensor = std::move(t);
    return v;
  }
  static Value of_sequence(std::vector<Tensor> items, DType dtype) {
    Value v;
    v.kind = Kind::Sequence;
    v.sequence = std::move(items);
    v.sequence_dtype = dtype;
    return v;
  }
  static Value none() {
    Value v;
    v.optional = true;
    return v;
  }
  bool is_tensor() const { return kind == Kind::Tensor; }
  bool is_sequence() const { return kind == Kind::Sequence; }
  bool is_none() const { return kind == Kind::None; }
};

}  // namespace kpt
