#pragma once
// Builds the replacement nodes of one lowered node: fresh value names, constants as
// initializers, and the few ops whose form depends on the target opset (axes as attribute or
// input). Every standard node it makes is valid at `opset`.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "export/onnx_lowering.hpp"
#include "ir/graph.hpp"

namespace kpt::onnx_export {

class Emitter {
 public:
  Emitter(ir::Graph& g, std::set<std::string>& taken, int opset, ExportMode mode, std::string base)
      : g_(g), taken_(taken), opset_(opset), mode_(mode), base_(std::move(base)) {}

  int opset() const { return opset_; }
  ExportMode mode() const { return mode_; }
  ir::Graph& graph() { return g_; }
  std::vector<ir::Node>& nodes() { return nodes_; }

  // A node with one fresh output (returned). Domain "" nodes get the target opset.
  std::string op(const std::string& op_type, std::vector<std::string> inputs,
                 std::map<std::string, ir::Attribute> attrs = {}, const std::string& domain = "");
  // A node with the given outputs.
  ir::Node& op_to(const std::string& op_type, std::vector<std::string> inputs,
                  std::vector<std::string> outputs, std::map<std::string, ir::Attribute> attrs = {},
                  const std::string& domain = "");
  // Makes `value` (computed by this emitter, or an existing value) appear under `name`.
  void finish(const std::string& value, const std::string& name);

  std::string fresh(const std::string& suffix);
  std::string constant(Tensor t, const std::string& suffix);
  std::string scalar(DType dtype, double v, const std::string& suffix);
  std::string ints(std::vector<int64_t> v, const std::string& suffix);

  std::string unsqueeze(const std::string& x, std::vector<int64_t> axes);
  std::string reduce_mean(const std::string& x, std::vector<int64_t> axes);  // keepdims
  std::string slice(const std::string& x, int64_t start, int64_t end, int64_t axis);
  std::string transpose(const std::string& x, std::vector<int64_t> perm);
  std::string concat(std::vector<std::string> parts, int64_t axis);
  // Shape(x)[start:end] as a 1-D int64 tensor.
  std::string shape_slice(const std::string& x, int64_t start, int64_t end);

  // The element type of a value (declared, inferred or an initializer's); F32 when unknown.
  DType dtype_of(const std::string& v) const;
  // The rank of a value when known.
  std::optional<size_t> rank_of(const std::string& v) const;
  const ir::Shape* shape_of(const std::string& v) const;
  // Dim d of a value whose rank is known to be `rank`.
  std::optional<ir::Dim> dim(const std::string& v, size_t rank, size_t d) const;

 private:
  ir::Graph& g_;
  std::set<std::string>& taken_;
  int opset_;
  ExportMode mode_;
  std::string base_;
  std::vector<ir::Node> nodes_;
};

ir::Attribute attr_tensor(const std::string& name, Tensor t);

}  // namespace kpt::onnx_export
