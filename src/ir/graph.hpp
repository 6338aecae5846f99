#pragma once
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kpt/tensor.hpp"

namespace kpt::ir {

struct Graph;

// One dim of a shape: a known size, or a symbol (named like "batch", or unnamed: "").
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;
  bool known() const { return value >= 0; }
  static Dim of(int64_t v) { return Dim{v, {}}; }
  static Dim sym(std::string s) { return Dim{-1, std::move(s)}; }
  bool operator==(const Dim& o) const = default;
};
using Shape = std::vector<Dim>;
std::string shape_to_string(const Shape& s);

// Type of a graph edge: tensor, sequence of T, or optional of T.
struct Type {
  enum class Kind { Unknown, Tensor, Sequence, Optional, Map, SparseTensor };
  Kind kind = Kind::Unknown;
  DType elem = DType::Undefined;  // for Tensor (and SparseTensor)
  std::optional<Shape> shape;     // for Tensor; nullopt when rank is unknown
  std::shared_ptr<Type> inner;    // for Sequence and Optional

  static Type tensor(DType d, std::optional<Shape> s = std::nullopt) {
    Type t;
    t.kind = Kind::Tensor;
    t.elem = d;
    t.shape = std::move(s);
    return t;
  }
  std::string to_string() const;
};

struct ValueInfo {
  std::string name;
  Type type;
};

struct Attribute {
  enum class Kind {
    Undefined,
    Float,
    Int,
    String,
    Tensor,
    Graph,
    SparseTensor,
    TypeProto,
    Floats,
    Ints,
    Strings,
    Tensors,
    Graphs,
    SparseTensors,
    TypeProtos
  };
  std::string name;
  Kind kind = Kind::Undefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  Type tp;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  std::vector<Type> type_protos;
  std::string ref_attr_name;  // inside functions: refers to the caller's attribute

  static Attribute of_int(std::string name, int64_t v) {
    Attribute a = named(std::move(name), Kind::Int);
    a.i = v;
    return a;
  }
  static Attribute of_float(std::string name, float v) {
    Attribute a = named(std::move(name), Kind::Float);
    a.f = v;
    return a;
  }
  static Attribute of_string(std::string name, std::string v) {
    Attribute a = named(std::move(name), Kind::String);
    a.s = std::move(v);
    return a;
  }
  static Attribute of_ints(std::string name, std::vector<int64_t> v) {
    Attribute a = named(std::move(name), Kind::Ints);
    a.ints = std::move(v);
    return a;
  }

 private:
  static Attribute named(std::string name, Kind kind) {
    Attribute a;
    a.name = std::move(name);
    a.kind = kind;
    return a;
  }
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;               // "" is the default ONNX domain ("ai.onnx" is normalized to "")
  int opset = 0;                    // version of `domain` imported by the model
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& n) const { return attrs.count(n) != 0; }
  const Attribute* attr(const std::string& n) const;
  int64_t attr_int(const std::string& n, int64_t dflt) const;
  float attr_float(const std::string& n, float dflt) const;
  std::string attr_string(const std::string& n, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& n, std::vector<int64_t> dflt = {}) const;
  std::vector<float> attr_floats(const std::string& n, std::vector<float> dflt = {}) const;
  std::vector<std::string> attr_strings(const std::string& n,
                                        std::vector<std::string> dflt = {}) const;
  const Tensor* attr_tensor(const std::string& n) const;
  const Graph* attr_graph(const std::string& n) const;
  std::string label() const;  // "Add node 'name'" for messages
};

// A graph: nodes in topological order once verified, edges named by strings (as in ONNX), so
// subgraphs may name values of enclosing graphs.
struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::map<std::string, Tensor> initializers;
  std::map<std::string, Type> value_types;  // value_info and inferred types
  std::map<std::string, int> opsets;        // domain -> version

  const Type* type_of(const std::string& value) const;
  // Every value defined in this graph (inputs, initializers, node outputs).
  std::vector<std::string> defined_values() const;
};

// Sorts nodes topologically; fails naming a value that is used but never defined (unless
// `outer` lists it) or the nodes of a cycle. Recurses into subgraphs.
void sort_and_verify(Graph& g, const std::vector<std::string>& outer = {});
// Values a subgraph reads from the scopes that enclose it.
std::set<std::string> outer_uses(const Graph& g);
// Readable text form, one node per line, subgraphs indented.
std::string print(const Graph& g);
// Deepest nesting of subgraphs (0 for a flat graph).
int subgraph_depth(const Graph& g);

}  // namespace kpt::ir
