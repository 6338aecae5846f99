#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ir/model.hpp"
#include "kpt/value.hpp"

namespace onnx {
class TensorProto;
class SequenceProto;
class OptionalProto;
class TypeProto;
}  // namespace onnx

namespace kpt::onnx_import {

struct ImportLimits {
  int max_subgraph_depth = 64;
  int max_function_depth = 32;
  // A sparse tensor is made dense at import; its dims are only declared (a few bytes of file
  // can claim terabytes), so the dense size is capped before anything is allocated.
  int64_t max_sparse_dense_bytes = int64_t{2} << 30;
  // Nodes that inlining model-local functions may produce in all: a function calling another
  // twice, 30 levels deep, is a few hundred bytes of file and 2^30 nodes.
  int64_t max_inlined_nodes = 1'000'000;
};

// Bytes that external data may point into, kept alive by `keeper` (a mapped file).
struct MappedBytes {
  const void* data = nullptr;
  size_t size = 0;
  std::shared_ptr<void> keeper;
};
// Resolves an external-data location to the bytes it names, instead of a file beside the
// model: engine files keep their weights in the same mapped file as the graph.
using ExternalResolver = std::function<MappedBytes(const std::string& location)>;

// Reads an ONNX model. External data files are read only from `model_dir` (the folder of
// the model file; empty when loading from bytes, which then may not use external data).
ir::Model import_file(const std::string& path, const ImportLimits& limits = {});
ir::Model import_bytes(const std::string& bytes, const std::string& model_dir,
                       const ImportLimits& limits = {}, const ExternalResolver* resolver = nullptr);

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& model_dir,
                         const ExternalResolver* resolver = nullptr);
ir::Type type_from_proto(const onnx::TypeProto& p);

// Reads a data file of the backend test suite (TensorProto, SequenceProto or OptionalProto
// serialized), choosing the message by the expected type.
Value read_value_file(const std::string& path, const ir::Type& expected);

}  // namespace kpt::onnx_import
