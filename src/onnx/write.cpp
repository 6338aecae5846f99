// ir::Model -> onnx::ModelProto. Mirrors import.cpp field by field.
#include "onnx/write.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "kpt/error.hpp"
#include "onnx/onnx.pb.h"

namespace kpt::onnx_write {

namespace {

void shape_to_proto(const ir::Shape& s, onnx::TensorShapeProto* p) {
  for (const auto& d : s) {
    auto* dim = p->add_dim();
    if (d.known()) {
      dim->set_dim_value(d.value);
    } else if (!d.symbol.empty()) {
      dim->set_dim_param(d.symbol);
    }
  }
}

void type_to_proto(const ir::Type& t, onnx::TypeProto* p) {
  using K = ir::Type::Kind;
  switch (t.kind) {
    case K::Tensor: {
      auto* tt = p->mutable_tensor_type();
      tt->set_elem_type(static_cast<int32_t>(t.elem));
      if (t.shape) shape_to_proto(*t.shape, tt->mutable_shape());
      return;
    }
    case K::SparseTensor:
      p->mutable_sparse_tensor_type()->set_elem_type(static_cast<int32_t>(t.elem));
      return;
    case K::Sequence:
      check(t.inner != nullptr, "a sequence type has no element type");
      type_to_proto(*t.inner, p->mutable_sequence_type()->mutable_elem_type());
      return;
    case K::Optional:
      check(t.inner != nullptr, "an optional type has no element type");
      type_to_proto(*t.inner, p->mutable_optional_type()->mutable_elem_type());
      return;
    case K::Map:
      fail("map types cannot be written back to ONNX");
    case K::Unknown:
      return;
  }
}

// Sub-byte types live one element per byte in memory and packed (low bits first) in files.
std::string pack_subbyte(const Tensor& t) {
  const int bits = packed_bits(t.dtype());
  const int per = 8 / bits;
  const auto* src = t.data<uint8_t>();
  std::string out(static_cast<size_t>((t.numel() + per - 1) / per), '\0');
  const uint8_t mask = static_cast<uint8_t>((1 << bits) - 1);
  for (int64_t i = 0; i < t.numel(); ++i) {
    out[static_cast<size_t>(i / per)] |=
        static_cast<char>((src[i] & mask) << (bits * static_cast<int>(i % per)));
  }
  return out;
}

void tensor_to_proto(const std::string& name, const Tensor& t, onnx::TensorProto* p,
                     const WriteOptions& o) {
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::String) {
    for (const auto& s : t.strings()) p->add_string_data(s);
    return;
  }
  if (packed_bits(t.dtype()) < 8) {
    p->set_raw_data(pack_subbyte(t));
    return;
  }
  if (o.external && t.numel() > 0) {
    if (auto ext = o.external(name, t)) {
      p->set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const char* k, const std::string& v) {
        auto* e = p->add_external_data();
        e->set_key(k);
        e->set_value(v);
      };
      add("location", ext->location);
      add("offset", std::to_string(ext->offset));
      add("length", std::to_string(ext->length));
      return;
    }
  }
  p->set_raw_data(t.raw(), t.nbytes());
}

struct Writer {
  const WriteOptions& options;

  void attribute(const ir::Attribute& a, onnx::AttributeProto* p) {
    using K = ir::Attribute::Kind;
    p->set_name(a.name);
    if (!a.ref_attr_name.empty()) p->set_ref_attr_name(a.ref_attr_name);
    switch (a.kind) {
      case K::Float:
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f);
        break;
      case K::Int:
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.i);
        break;
      case K::String:
        p->set_type(onnx::AttributeProto::STRING);
        p->set_s(a.s);
        break;
      case K::Tensor:
      case K::SparseTensor:  // made dense at import
        p->set_type(onnx::AttributeProto::TENSOR);
        tensor_to_proto("", a.t, p->mutable_t(), WriteOptions{});
        break;
      case K::Graph:
        p->set_type(onnx::AttributeProto::GRAPH);
        graph(*a.g, p->mutable_g());
        break;
      case K::TypeProto:
        p->set_type(onnx::AttributeProto::TYPE_PROTO);
        type_to_proto(a.tp, p->mutable_tp());
        break;
      case K::Floats:
        p->set_type(onnx::AttributeProto::FLOATS);
        for (float f : a.floats) p->add_floats(f);
        break;
      case K::Ints:
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t i : a.ints) p->add_ints(i);
        break;
      case K::Strings:
        p->set_type(onnx::AttributeProto::STRINGS);
        for (const auto& s : a.strings) p->add_strings(s);
        break;
      case K::Tensors:
      case K::SparseTensors:
        p->set_type(onnx::AttributeProto::TENSORS);
        for (const auto& t : a.tensors) tensor_to_proto("", t, p->add_tensors(), WriteOptions{});
        break;
      case K::Graphs:
        p->set_type(onnx::AttributeProto::GRAPHS);
        for (const auto& g : a.graphs) graph(*g, p->add_graphs());
        break;
      case K::TypeProtos:
        p->set_type(onnx::AttributeProto::TYPE_PROTOS);
        for (const auto& t : a.type_protos) type_to_proto(t, p->add_type_protos());
        break;
      case K::Undefined:
        break;
    }
  }

  void graph(const ir::Graph& g, onnx::GraphProto* p) {
    p->set_name(g.name);
    for (const auto& [name, t] : g.initializers) {
      tensor_to_proto(name, t, p->add_initializer(), options);
    }
    auto value_info = [](const ir::ValueInfo& v, onnx::ValueInfoProto* vp) {
      vp->set_name(v.name);
      type_to_proto(v.type, vp->mutable_type());
    };
    for (const auto& i : g.inputs) value_info(i, p->add_input());
    for (const auto& o : g.outputs) value_info(o, p->add_output());
    for (const auto& n : g.nodes) {
      auto* np = p->add_node();
      np->set_name(n.name);
      np->set_op_type(n.op_type);
      if (!n.domain.empty()) np->set_domain(n.domain);
      for (const auto& i : n.inputs) np->add_input(i);
      for (const auto& o : n.outputs) np->add_output(o);
      for (const auto& [name, a] : n.attrs) attribute(a, np->add_attribute());
    }
    if (!options.value_info) return;
    std::set<std::string> declared;
    for (const auto& i : g.inputs) declared.insert(i.name);
    for (const auto& o : g.outputs) declared.insert(o.name);
    for (const auto& [name, t] : g.value_types) {
      if (declared.count(name) || g.initializers.count(name)) continue;
      if (t.kind == ir::Type::Kind::Unknown || t.kind == ir::Type::Kind::Map) continue;
      value_info(ir::ValueInfo{name, t}, p->add_value_info());
    }
  }
};

void collect_opsets(const ir::Graph& g, std::map<std::string, int>& opsets) {
  for (const auto& n : g.nodes) {
    int& v = opsets[n.domain];
    v = std::max(v, n.opset);
    for (const auto& [name, a] : n.attrs) {
      if (a.g) collect_opsets(*a.g, opsets);
      for (const auto& sub : a.graphs) collect_opsets(*sub, opsets);
    }
  }
}

}  // namespace

std::string model_to_bytes(const ir::Model& m, const WriteOptions& options) {
  onnx::ModelProto proto;
  proto.set_ir_version(m.ir_version > 0 ? m.ir_version : 10);
  proto.set_producer_name(m.producer_name.empty() ? "kpt" : m.producer_name);
  proto.set_producer_version(m.producer_version);
  std::map<std::string, int> opsets = m.opsets;
  collect_opsets(m.graph, opsets);
  for (const auto& [domain, version] : opsets) {
    auto* o = proto.add_opset_import();
    o->set_domain(domain);
    // A domain only our fused nodes use may carry opset 0 (never versioned): ONNX wants >= 1.
    o->set_version(std::max(version, 1));
  }
  for (const auto& [k, v] : m.metadata) {
    auto* e = proto.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  Writer w{options};
  w.graph(m.graph, proto.mutable_graph());
  const size_t size = proto.ByteSizeLong();
  check(size <= static_cast<size_t>(INT_MAX),
        "the model is " + std::to_string(size >> 20) +
            " MiB serialized; protobuf cannot write more than 2 GiB: store the weights as "
            "external data");
  std::string out;
  check(proto.SerializeToString(&out), "serializing the ONNX model failed");
  return out;
}

void save_model(const ir::Model& m, const std::string& path, const WriteOptions& options) {
  const std::string bytes = model_to_bytes(m, options);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  check(f.good(), "cannot open '" + path + "' for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  check(f.good(), "writing '" + path + "' failed (disk full?)");
}

}  // namespace kpt::onnx_write
