#include "tests/testing/model_builder.hpp"

namespace kpt::testing {

void set_tensor_type(onnx::TypeProto* t, DType dtype, const std::optional<DeclDims>& dims) {
  auto* tt = t->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(dtype));
  if (!dims) return;
  auto* shape = tt->mutable_shape();
  for (int64_t d : *dims) {
    auto* dim = shape->add_dim();
    if (d < 0)
      dim->set_dim_param(d == -2 ? "S" : "N");
    else
      dim->set_dim_value(d);
  }
}

void set_value_info(onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const std::optional<DeclDims>& dims) {
  v->set_name(name);
  set_tensor_type(v->mutable_type(), dtype, dims);
}

onnx::TensorProto raw_tensor(const std::string& name, DType dtype, const DeclDims& dims,
                             const std::string& bytes) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(static_cast<int32_t>(dtype));
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(bytes);
  return t;
}

namespace {
onnx::AttributeProto* new_attr(onnx::NodeProto& n, const std::string& name,
                               onnx::AttributeProto::AttributeType type) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
}  // namespace

onnx::AttributeProto* add_int_attr(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = new_attr(n, name, onnx::AttributeProto::INT);
  a->set_i(v);
  return a;
}

onnx::AttributeProto* add_ints_attr(onnx::NodeProto& n, const std::string& name,
                                    const std::vector<int64_t>& v) {
  auto* a = new_attr(n, name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
  return a;
}

onnx::AttributeProto* add_float_attr(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = new_attr(n, name, onnx::AttributeProto::FLOAT);
  a->set_f(v);
  return a;
}

onnx::AttributeProto* add_tensor_attr(onnx::NodeProto& n, const std::string& name,
                                      const onnx::TensorProto& t) {
  auto* a = new_attr(n, name, onnx::AttributeProto::TENSOR);
  *a->mutable_t() = t;
  return a;
}

onnx::AttributeProto* add_graph_attr(onnx::NodeProto& n, const std::string& name,
                                     const onnx::GraphProto& g) {
  auto* a = new_attr(n, name, onnx::AttributeProto::GRAPH);
  *a->mutable_g() = g;
  return a;
}

ModelBuilder::ModelBuilder(int opset_version, int64_t ir_version) {
  model_.set_ir_version(ir_version);
  model_.set_producer_name("kpt-tests");
  opset("", opset_version);
  model_.mutable_graph()->set_name("test");
}

void ModelBuilder::opset(const std::string& domain, int version) {
  for (auto& o : *model_.mutable_opset_import()) {
    if (o.domain() == domain) {
      o.set_version(version);
      return;
    }
  }
  auto* o = model_.add_opset_import();
  o->set_domain(domain);
  o->set_version(version);
}

onnx::ValueInfoProto& ModelBuilder::input(const std::string& name, DType dtype,
                                          const std::optional<DeclDims>& dims) {
  auto* v = graph().add_input();
  set_value_info(v, name, dtype, dims);
  return *v;
}

onnx::ValueInfoProto& ModelBuilder::output(const std::string& name, DType dtype,
                                           const std::optional<DeclDims>& dims) {
  auto* v = graph().add_output();
  set_value_info(v, name, dtype, dims);
  return *v;
}

onnx::NodeProto& ModelBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs,
                                    const std::string& name, const std::string& domain) {
  auto* n = graph().add_node();
  n->set_op_type(op);
  n->set_name(name);
  if (!domain.empty()) n->set_domain(domain);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

onnx::TensorProto& ModelBuilder::initializer(const std::string& name, DType dtype,
                                             const DeclDims& dims, const std::string& raw_bytes) {
  return initializer(raw_tensor(name, dtype, dims, raw_bytes));
}

onnx::TensorProto& ModelBuilder::initializer(const onnx::TensorProto& t) {
  auto* p = graph().add_initializer();
  *p = t;
  return *p;
}

std::string ModelBuilder::bytes() const {
  std::string s;
  model_.SerializeToString(&s);
  return s;
}

std::string add_model_bytes() {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2, 3});
  b.node("Add", {"x", "x"}, {"y"}, "add");
  b.output("y", DType::F32, DeclDims{2, 3});
  return b.bytes();
}

}  // namespace kpt::testing
