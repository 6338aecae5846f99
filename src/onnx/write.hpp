#pragma once
// ir::Model -> ONNX ModelProto bytes: the inverse of import, for `kpt export` and engine files.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ir/model.hpp"

namespace kpt::onnx_write {

struct ExternalData {
  std::string location;
  int64_t offset = 0;
  int64_t length = 0;
};

struct WriteOptions {
  // Per initializer: a location stores its bytes there as ONNX external data (the callback
  // writes them); nullopt keeps them inline as raw_data.
  std::function<std::optional<ExternalData>(const std::string& name, const Tensor& t)> external;
  // Inferred types of intermediate values go to value_info; a peer runtime that disagrees with
  // one of our inferred shapes would refuse the model, so export may leave them out.
  bool value_info = true;
};

// Faithful: every node keeps its domain; a domain's opset_import is the highest of the model's
// import and the opsets its nodes carry. Fails on what ONNX cannot hold (2 GB protobuf limit
// with inline weights, a Map-typed value).
std::string model_to_bytes(const ir::Model& m, const WriteOptions& options = {});
void save_model(const ir::Model& m, const std::string& path, const WriteOptions& options = {});

}  // namespace kpt::onnx_write
