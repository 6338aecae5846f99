// ONNX ModelProto -> ir::Model: graphs, attributes, types, Constant nodes, sparse
// initializers and model-local functions (inlined at their call sites).
#include "onnx/import.hpp"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "kpt/error.hpp"
#include "onnx/onnx.pb.h"

namespace kpt::onnx_import {

namespace {

std::string norm_domain(const std::string& d) {
  return d == "ai.onnx" ? "" : d;
}

ir::Shape shape_from_proto(const onnx::TensorShapeProto& s) {
  ir::Shape out;
  for (const auto& d : s.dim()) {
    if (d.has_dim_value()) {
      check(d.dim_value() >= 0,
            "negative dimension " + std::to_string(d.dim_value()) + " in a declared shape");
      out.push_back(ir::Dim::of(d.dim_value()));
    } else {
      out.push_back(ir::Dim::sym(d.has_dim_param() ? d.dim_param() : ""));
    }
  }
  return out;
}

Tensor sparse_to_dense(const onnx::SparseTensorProto& sp, const std::string& dir,
                       const ImportLimits& limits) {
  Tensor values = tensor_from_proto(sp.values(), dir);
  Dims dims(sp.dims().begin(), sp.dims().end());
  const std::string what = "sparse tensor '" + sp.values().name() + "'";
  int64_t count = 0;
  try {
    count = element_count(dims);
  } catch (const Error& e) {
    fail(what + ": " + e.what());
  }
  const auto elem_bytes = static_cast<int64_t>(dtype_size(values.dtype()));
  check(count <= limits.max_sparse_dense_bytes / elem_bytes,
        what + ": dense shape " + dims_to_string(dims) + " of " +
            std::string(dtype_name(values.dtype())) + " exceeds the import limit of " +
            std::to_string(limits.max_sparse_dense_bytes) + " bytes");
  Tensor dense(values.dtype(), dims);
  const int64_t n = dense.numel();
  const int64_t nnz = values.numel();
  if (!sp.has_indices() || nnz == 0) return dense;
  Tensor idx = tensor_from_proto(sp.indices(), dir);
  const size_t es = dtype_size(values.dtype());
  auto place = [&](int64_t k, int64_t lin) {
    check(lin >= 0 && lin < n, "sparse tensor '" + sp.values().name() + "': index " +
                                   std::to_string(lin) + " is outside shape " +
                                   dims_to_string(dims));
    if (values.dtype() == DType::String) {
      dense.strings()[static_cast<size_t>(lin)] = values.strings()[static_cast<size_t>(k)];
    } else {
      std::memcpy(static_cast<char*>(dense.raw()) + lin * static_cast<int64_t>(es),
                  static_cast<const char*>(values.raw()) + k * static_cast<int64_t>(es), es);
    }
  };
  if (idx.rank() == 1) {
    check(idx.numel() == nnz, "sparse tensor: index count does not match value count");
    for (int64_t k = 0; k < nnz; ++k) place(k, idx.get_i64(k));
  } else {
    check(idx.rank() == 2 && idx.dims()[0] == nnz &&
              idx.dims()[1] == static_cast<int64_t>(dims.size()),
          "sparse tensor: indices must be [nnz] or [nnz, rank]");
    for (int64_t k = 0; k < nnz; ++k) {
      int64_t lin = 0;
      for (size_t d = 0; d < dims.size(); ++d) {
        int64_t i = idx.get_i64(k * static_cast<int64_t>(dims.size()) + static_cast<int64_t>(d));
        check(i >= 0 && i < dims[d], "sparse tensor: index out of range");
        lin = lin * dims[d] + i;
      }
      place(k, lin);
    }
  }
  return dense;
}

struct Importer {
  const onnx::ModelProto& model;
  std::string dir;
  ImportLimits limits;
  std::map<std::pair<std::string, std::string>, const onnx::FunctionProto*> functions;
  int unique = 0;
  int64_t inlined_nodes = 0;  // nodes produced by inlining, across the whole model
  const ExternalResolver* resolver = nullptr;

  ir::Attribute attribute(const onnx::AttributeProto& a, const std::map<std::string, int>& opsets,
                          int depth) {
    ir::Attribute r;
    r.name = a.name();
    r.ref_attr_name = a.ref_attr_name();
    using K = ir::Attribute::Kind;
    auto type = a.type();
    if (type == onnx::AttributeProto::UNDEFINED) {
      // Old files omit the type; infer it from the field that is set.
      if (a.has_f())
        type = onnx::AttributeProto::FLOAT;
      else if (a.has_i())
        type = onnx::AttributeProto::INT;
      else if (a.has_s())
        type = onnx::AttributeProto::STRING;
      else if (a.has_t())
        type = onnx::AttributeProto::TENSOR;
      else if (a.has_g())
        type = onnx::AttributeProto::GRAPH;
      else if (a.floats_size())
        type = onnx::AttributeProto::FLOATS;
      else if (a.ints_size())
        type = onnx::AttributeProto::INTS;
      else if (a.strings_size())
        type = onnx::AttributeProto::STRINGS;
      else if (a.graphs_size())
        type = onnx::AttributeProto::GRAPHS;
      else if (a.tensors_size())
        type = onnx::AttributeProto::TENSORS;
    }
    switch (type) {
      case onnx::AttributeProto::FLOAT:
        r.kind = K::Float;
        r.f = a.f();
        break;
      case onnx::AttributeProto::INT:
        r.kind = K::Int;
        r.i = a.i();
        break;
      case onnx::AttributeProto::STRING:
        r.kind = K::String;
        r.s = a.s();
        break;
      case onnx::AttributeProto::TENSOR:
        r.kind = K::Tensor;
        r.t = tensor_from_proto(a.t(), dir, resolver);
        break;
      case onnx::AttributeProto::SPARSE_TENSOR:
        r.kind = K::SparseTensor;
        r.t = sparse_to_dense(a.sparse_tensor(), dir, limits);
        break;
      case onnx::AttributeProto::GRAPH:
        r.kind = K::Graph;
        r.g = std::make_shared<ir::Graph>(graph(a.g(), opsets, depth + 1));
        break;
      case onnx::AttributeProto::TYPE_PROTO:
        r.kind = K::TypeProto;
        r.tp = type_from_proto(a.tp());
        break;
      case onnx::AttributeProto::FLOATS:
        r.kind = K::Floats;
        r.floats.assign(a.floats().begin(), a.floats().end());
        break;
      case onnx::AttributeProto::INTS:
        r.kind = K::Ints;
        r.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case onnx::AttributeProto::STRINGS:
        r.kind = K::Strings;
        r.strings.assign(a.strings().begin(), a.strings().end());
        break;
      case onnx::AttributeProto::TENSORS:
        r.kind = K::Tensors;
        for (const auto& t : a.tensors()) r.tensors.push_back(tensor_from_proto(t, dir, resolver));
        break;
      case onnx::AttributeProto::GRAPHS:
        r.kind = K::Graphs;
        for (const auto& g : a.graphs())
          r.graphs.push_back(std::make_shared<ir::Graph>(graph(g, opsets, depth + 1)));
        break;
      case onnx::AttributeProto::TYPE_PROTOS:
        r.kind = K::TypeProtos;
        for (const auto& t : a.type_protos()) r.type_protos.push_back(type_from_proto(t));
        break;
      case onnx::AttributeProto::SPARSE_TENSORS:
        r.kind = K::Tensors;
        for (const auto& t : a.sparse_tensors())
          r.tensors.push_back(sparse_to_dense(t, dir, limits));
        break;
      default:
        if (!a.ref_attr_name().empty()) break;
        fail("attribute '" + a.name() + "' has no type and no value");
    }
    return r;
  }

  ir::Node node(const onnx::NodeProto& n, const std::map<std::string, int>& opsets, int depth) {
    ir::Node r;
    r.name = n.name();
    r.op_type = n.op_type();
    r.domain = norm_domain(n.domain());
    auto it = opsets.find(r.domain);
    r.opset = it == opsets.end() ? 0 : it->second;
    check(!r.op_type.empty(), "a node has no op_type");
    r.inputs.assign(n.input().begin(), n.input().end());
    r.outputs.assign(n.output().begin(), n.output().end());
    for (const auto& a : n.attribute()) {
      try {
        r.attrs[a.name()] = attribute(a, opsets, depth);
      } catch (const Unsupported&) {
        throw;
      } catch (const Error& e) {
        fail(r.label() + ", attribute '" + a.name() + "': " + e.what());
      }
    }
    return r;
  }

  // Expands a call of a model-local function into `out`, renaming the body's values.
  void inline_call(const ir::Node& call, const onnx::FunctionProto& f, std::vector<ir::Node>& out,
                   int fdepth, int depth) {
    check(fdepth <= limits.max_function_depth, "function calls nest deeper than " +
                                                   std::to_string(limits.max_function_depth) +
                                                   " (recursive function '" + f.name() + "'?)");
    std::map<std::string, int> fopsets;
    for (const auto& o : f.opset_import())
      fopsets[norm_domain(o.domain())] = static_cast<int>(o.version());
    for (const auto& o : model.opset_import())
      fopsets.emplace(norm_domain(o.domain()), static_cast<int>(o.version()));
    std::map<std::string, std::string> rename;
    for (int i = 0; i < f.input_size(); ++i) {
      rename[f.input(i)] =
          i < static_cast<int>(call.inputs.size()) ? call.inputs[static_cast<size_t>(i)] : "";
    }
    for (int i = 0; i < f.output_size(); ++i) {
      rename[f.output(i)] =
          i < static_cast<int>(call.outputs.size()) ? call.outputs[static_cast<size_t>(i)] : "";
    }
    std::map<std::string, ir::Attribute> attr_values;
    for (const auto& a : f.attribute_proto()) attr_values[a.name()] = attribute(a, fopsets, depth);
    for (const auto& [n, a] : call.attrs) attr_values[n] = a;
    const std::string prefix = call.name + "/" + std::to_string(unique++) + "/";
    auto map_name = [&](const std::string& v) -> std::string {
      if (v.empty()) return v;
      auto it = rename.find(v);
      if (it != rename.end()) return it->second;
      return rename[v] = prefix + v;
    };
    for (const auto& np : f.node()) {
      ir::Node n = node(np, fopsets, depth);
      for (auto& i : n.inputs) i = map_name(i);
      for (auto& o : n.outputs) o = map_name(o);
      n.name = prefix + n.name;
      for (auto it = n.attrs.begin(); it != n.attrs.end();) {
        if (!it->second.ref_attr_name.empty()) {
          auto v = attr_values.find(it->second.ref_attr_name);
          if (v == attr_values.end()) {
            it = n.attrs.erase(it);
            continue;
          }
          std::string keep = it->first;
          it->second = v->second;
          it->second.name = keep;
        }
        ++it;
      }
      expand(std::move(n), out, fdepth + 1, depth);
    }
  }

  void expand(ir::Node n, std::vector<ir::Node>& out, int fdepth, int depth) {
    auto f = functions.find({n.domain, n.op_type});
    if (f != functions.end()) {
      inline_call(n, *f->second, out, fdepth, depth);
    } else {
      if (fdepth > 0) {
        check(++inlined_nodes <= limits.max_inlined_nodes,
              "inlining model-local functions would make more than " +
                  std::to_string(limits.max_inlined_nodes) +
                  " nodes (functions calling functions several times each, nested deeply)");
      }
      out.push_back(std::move(n));
    }
  }

  ir::Graph graph(const onnx::GraphProto& g, const std::map<std::string, int>& opsets, int depth) {
    check(depth <= limits.max_subgraph_depth,
          "subgraphs nest deeper than " + std::to_string(limits.max_subgraph_depth) + " levels");
    ir::Graph r;
    r.name = g.name();
    r.opsets = opsets;
    for (const auto& t : g.initializer()) {
      check(!t.name().empty(), "graph '" + g.name() + "' has an initializer without a name");
      r.initializers[t.name()] = tensor_from_proto(t, dir, resolver);
    }
    for (const auto& sp : g.sparse_initializer()) {
      r.initializers[sp.values().name()] = sparse_to_dense(sp, dir, limits);
    }
    for (const auto& i : g.input()) {
      // Old exporters list initializers among the inputs too; those stay overridable inputs.
      r.inputs.push_back({i.name(), type_from_proto(i.type())});
    }
    for (const auto& o : g.output()) r.outputs.push_back({o.name(), type_from_proto(o.type())});
    for (const auto& v : g.value_info()) r.value_types[v.name()] = type_from_proto(v.type());
    for (const auto& np : g.node()) {
      ir::Node n = node(np, opsets, depth);
      if (n.op_type == "Constant" && n.domain.empty() && n.outputs.size() == 1) {
        r.initializers[n.outputs[0]] = constant_value(n);
        continue;
      }
      std::vector<ir::Node> expanded;
      expand(std::move(n), expanded, 0, depth);
      for (auto& e : expanded) {
        if (e.op_type == "Constant" && e.domain.empty() && e.outputs.size() == 1 &&
            !e.outputs[0].empty()) {
          r.initializers[e.outputs[0]] = constant_value(e);
        } else {
          r.nodes.push_back(std::move(e));
        }
      }
    }
    return r;
  }

  static Tensor constant_value(const ir::Node& n) {
    check(n.attrs.size() == 1, n.label() + ": a Constant needs exactly one value attribute");
    const auto& [name, a] = *n.attrs.begin();
    if (name == "value" || name == "sparse_value") return a.t;
    if (name == "value_float") return Tensor::scalar<float>(DType::F32, a.f);
    if (name == "value_int") return Tensor::scalar<int64_t>(DType::I64, a.i);
    if (name == "value_string") {
      Tensor t(DType::String, {});
      t.strings()[0] = a.s;
      return t;
    }
    if (name == "value_floats") {
      Tensor t(DType::F32, {static_cast<int64_t>(a.floats.size())});
      std::copy(a.floats.begin(), a.floats.end(), t.data<float>());
      return t;
    }
    if (name == "value_ints") {
      Tensor t(DType::I64, {static_cast<int64_t>(a.ints.size())});
      std::copy(a.ints.begin(), a.ints.end(), t.data<int64_t>());
      return t;
    }
    if (name == "value_strings") {
      Tensor t(DType::String, {static_cast<int64_t>(a.strings.size())});
      t.strings() = a.strings;
      return t;
    }
    fail(n.label() + ": unknown Constant attribute '" + name + "'");
  }
};

}  // namespace

ir::Type type_from_proto(const onnx::TypeProto& p) {
  ir::Type t;
  if (p.has_tensor_type()) {
    t.kind = ir::Type::Kind::Tensor;
    t.elem = static_cast<DType>(p.tensor_type().elem_type());
    if (p.tensor_type().has_shape()) t.shape = shape_from_proto(p.tensor_type().shape());
  } else if (p.has_sequence_type()) {
    t.kind = ir::Type::Kind::Sequence;
    t.inner = std::make_shared<ir::Type>(type_from_proto(p.sequence_type().elem_type()));
  } else if (p.has_optional_type()) {
    t.kind = ir::Type::Kind::Optional;
    t.inner = std::make_shared<ir::Type>(type_from_proto(p.optional_type().elem_type()));
  } else if (p.has_map_type()) {
    t.kind = ir::Type::Kind::Map;
  } else if (p.has_sparse_tensor_type()) {
    t.kind = ir::Type::Kind::SparseTensor;
    t.elem = static_cast<DType>(p.sparse_tensor_type().elem_type());
  }
  return t;
}

namespace {

// How deep GraphProtos nest (ModelProto.graph/functions -> node -> attribute.g/graphs -> ...)
// in serialized bytes, walked without recursion and without trusting the bytes. Used only to
// explain a failed parse: protobuf stops at its recursion limit with no reason given, and a
// deeply nested model deserves "too deep", not "truncated". Stops counting past `stop_at`.
int wire_graph_depth(const std::string& bytes, int stop_at) {
  enum Kind { Model, Graph, Node, Attr, Function };
  struct Frame {
    const uint8_t* p;
    const uint8_t* end;
    Kind kind;
    int depth;
  };
  auto varint = [](const uint8_t*& p, const uint8_t* end, uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  std::vector<Frame> stack{{begin, begin + bytes.size(), Model, 0}};
  int deepest = 0;
  while (!stack.empty() && deepest <= stop_at) {
    Frame& f = stack.back();
    uint64_t tag = 0, len = 0;
    if (f.p >= f.end || !varint(f.p, f.end, tag)) {
      stack.pop_back();
      continue;
    }
    const uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:
        if (!varint(f.p, f.end, len)) return deepest;
        continue;
      case 1:
      case 5: {
        const size_t w = (tag & 7) == 1 ? 8 : 4;
        if (static_cast<size_t>(f.end - f.p) < w) return deepest;
        f.p += w;
        continue;
      }
      case 2:
        if (!varint(f.p, f.end, len) || len > static_cast<uint64_t>(f.end - f.p)) return deepest;
        break;
      default:
        return deepest;  // groups are not used by ONNX
    }
    const uint8_t* body = f.p;
    f.p += len;
    const Kind parent = f.kind;
    const int depth = f.depth;
    Kind child = Model;
    int child_depth = depth;
    if (parent == Model && field == 7) {
      child = Graph;
    } else if (parent == Model && field == 25) {
      child = Function;
    } else if ((parent == Graph && field == 1) || (parent == Function && field == 7)) {
      child = Node;
    } else if (parent == Node && field == 5) {
      child = Attr;
    } else if (parent == Attr && (field == 6 || field == 11)) {
      child = Graph;
      child_depth = depth + 1;
    } else {
      continue;
    }
    deepest = std::max(deepest, child_depth);
    stack.push_back({body, body + len, child, child_depth});
  }
  return deepest;
}

}  // namespace

ir::Model import_bytes(const std::string& bytes, const std::string& model_dir,
                       const ImportLimits& limits, const ExternalResolver* resolver) {
  onnx::ModelProto proto;
  check(!bytes.empty(), "the model is empty (0 bytes); expected an ONNX ModelProto");
  // Each subgraph level is three messages deep (GraphProto, NodeProto, AttributeProto), and
  // types nest too: protobuf's default limit of 100 would refuse models at ~30 levels with an
  // unclear message, before our own limit could name the problem.
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(std::min<size_t>(bytes.size(), INT_MAX)));
  in.SetRecursionLimit(3 * limits.max_subgraph_depth + 100);
  if (bytes.size() > INT_MAX || !proto.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    const int depth = wire_graph_depth(bytes, limits.max_subgraph_depth);
    check(depth <= limits.max_subgraph_depth,
          "subgraphs nest deeper than " + std::to_string(limits.max_subgraph_depth) + " levels");
    fail("the model is not a valid ONNX file: protobuf parsing failed (truncated or not ONNX?)");
  }
  check(proto.has_graph(), "the model has no graph: is this an ONNX model file?");
  check(proto.ir_version() > 0, "the model declares no ir_version: is this an ONNX model file?");
  ir::Model m;
  m.ir_version = proto.ir_version();
  m.producer_name = proto.producer_name();
  m.producer_version = proto.producer_version();
  for (const auto& kv : proto.metadata_props()) m.metadata[kv.key()] = kv.value();
  for (const auto& o : proto.opset_import())
    m.opsets[norm_domain(o.domain())] = static_cast<int>(o.version());
  // IR version 3 and later must import opsets; before, the default domain was opset 1.
  if (!m.opsets.count("")) m.opsets[""] = proto.opset_import_size() ? 1 : 1;
  Importer im{proto, model_dir, limits, {}, 0, 0, resolver};
  for (const auto& f : proto.functions()) im.functions[{norm_domain(f.domain()), f.name()}] = &f;
  m.graph = im.graph(proto.graph(), m.opsets, 0);
  ir::sort_and_verify(m.graph);
  return m;
}

ir::Model import_file(const std::string& path, const ImportLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open model file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  try {
    return import_bytes(ss.str(), dir, limits);
  } catch (const Unsupported& e) {
    throw Unsupported(path + ": " + e.what());
  } catch (const Error& e) {
    fail(path + ": " + e.what());
  }
}

namespace {
Value value_from_sequence(const onnx::SequenceProto& s) {
  std::vector<Tensor> items;
  DType dt = DType::Undefined;
  for (const auto& t : s.tensor_values()) {
    items.push_back(tensor_from_proto(t, ""));
    dt = items.back().dtype();
  }
  return Value::of_sequence(std::move(items), dt);
}
}  // namespace

Value read_value_file(const std::string& path, const ir::Type& expected) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (expected.kind == ir::Type::Kind::Sequence) {
    onnx::SequenceProto s;
    check(s.ParseFromString(bytes), path + ": not a SequenceProto");
    return value_from_sequence(s);
  }
  if (expected.kind == ir::Type::Kind::Optional) {
    onnx::OptionalProto o;
    check(o.ParseFromString(bytes), path + ": not an OptionalProto");
    Value v;
    if (o.has_tensor_value())
      v = Value::of(tensor_from_proto(o.tensor_value(), ""));
    else if (o.has_sequence_value())
      v = value_from_sequence(o.sequence_value());
    v.optional = true;
    return v;
  }
  onnx::TensorProto t;
  check(t.ParseFromString(bytes), path + ": not a TensorProto");
  return Value::of(tensor_from_proto(t, ""));
}

}  // namespace kpt::onnx_import
