#pragma once
// Builds ONNX models in C++ so that tests state the model they need next to the assertion,
// instead of depending on binary files that nobody can read in a review.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kpt/dtype.hpp"
#include "onnx/onnx.pb.h"

namespace kpt::testing {

// Dims for declared shapes: a negative value becomes a symbolic dim, named "S" for -2 (a second
// symbol: sequence lengths) and "N" otherwise.
using DeclDims = std::vector<int64_t>;

// Fills `t` as a tensor type; without dims the rank is unknown.
void set_tensor_type(onnx::TypeProto* t, DType dtype, const std::optional<DeclDims>& dims);
// A graph input/output/value_info entry.
void set_value_info(onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const std::optional<DeclDims>& dims);

// A tensor whose bytes are given as raw_data (the layout every exporter writes).
onnx::TensorProto raw_tensor(const std::string& name, DType dtype, const DeclDims& dims,
                             const std::string& bytes);
template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

onnx::AttributeProto* add_int_attr(onnx::NodeProto& n, const std::string& name, int64_t v);
onnx::AttributeProto* add_ints_attr(onnx::NodeProto& n, const std::string& name,
                                    const std::vector<int64_t>& v);
onnx::AttributeProto* add_float_attr(onnx::NodeProto& n, const std::string& name, float v);
onnx::AttributeProto* add_tensor_attr(onnx::NodeProto& n, const std::string& name,
                                      const onnx::TensorProto& t);
onnx::AttributeProto* add_graph_attr(onnx::NodeProto& n, const std::string& name,
                                     const onnx::GraphProto& g);

// A model with one graph; the methods add to that graph and return what they added so a
// test can adjust details (a field left out, a wrong value) before serializing.
class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 17, int64_t ir_version = 8);

  onnx::ModelProto& proto() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }

  onnx::ValueInfoProto& input(const std::string& name, DType dtype,
                              const std::optional<DeclDims>& dims);
  onnx::ValueInfoProto& output(const std::string& name, DType dtype,
                               const std::optional<DeclDims>& dims);
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "",
                        const std::string& domain = "");
  onnx::TensorProto& initializer(const std::string& name, DType dtype, const DeclDims& dims,
                                 const std::string& raw_bytes);
  onnx::TensorProto& initializer(const onnx::TensorProto& t);
  void opset(const std::string& domain, int version);

  std::string bytes() const;

 private:
  onnx::ModelProto model_;
};

// The smallest useful model: y = x + x over f32[2,3]. Seeds the fuzzer and other tests.
std::string add_model_bytes();

}  // namespace kpt::testing
