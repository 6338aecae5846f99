#pragma once
#include <map>
#include <string>

#include "ir/graph.hpp"

namespace kpt::ir {

// A whole model: its main graph and what the file says about it.
struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::map<std::string, int> opsets;  // domain ("" for ai.onnx) -> version
  std::map<std::string, std::string> metadata;
  Graph graph;
};

}  // namespace kpt::ir
