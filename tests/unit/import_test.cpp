// What the importer must accept: every encoding an exporter may choose for a tensor, and the
// structures (Constant nodes, sparse initializers, model-local functions, non-tensor types)
// that become plain graph content on import.
#include "onnx/import.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

using testing::DeclDims;
using testing::ModelBuilder;

ir::Model import(const ModelBuilder& b) {
  return onnx_import::import_bytes(b.bytes(), "");
}

// A model whose only content is initializer `t`, listed as an output so the graph is valid.
ir::Model import_initializer(const onnx::TensorProto& t) {
  ModelBuilder b;
  b.initializer(t);
  b.output(t.name(), static_cast<DType>(t.data_type()), std::nullopt);
  return import(b);
}

onnx::TensorProto typed(const std::string& name, DType dtype, const DeclDims& dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(static_cast<int32_t>(dtype));
  for (int64_t d : dims) t.add_dims(d);
  return t;
}

TEST(Import, OpsetImportsAreRecordedAndGivenToNodes) {
  ModelBuilder b(13);
  b.opset("com.example", 2);
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "x"}, {"a"}, "plain");
  b.node("Mul", {"a", "a"}, {"m"}, "spelled", "ai.onnx");
  b.node("Custom", {"m"}, {"y"}, "custom", "com.example");
  b.output("y", DType::F32, DeclDims{2});
  ir::Model m = import(b);
  EXPECT_EQ(m.opsets.at(""), 13);
  EXPECT_EQ(m.opsets.at("com.example"), 2);
  ASSERT_EQ(m.graph.nodes.size(), 3u);
  EXPECT_EQ(m.graph.nodes[0].opset, 13);
  EXPECT_EQ(m.graph.nodes[1].domain, "");  // "ai.onnx" is the default domain
  EXPECT_EQ(m.graph.nodes[1].opset, 13);
  EXPECT_EQ(m.graph.nodes[2].domain, "com.example");
  EXPECT_EQ(m.graph.nodes[2].opset, 2);
}

TEST(Import, NodesAreSortedTopologically) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Mul", {"a", "a"}, {"y"}, "second");
  b.node("Add", {"x", "x"}, {"a"}, "first");
  b.output("y", DType::F32, DeclDims{2});
  ir::Model m = import(b);
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(m.graph.nodes[0].name, "first");
  EXPECT_EQ(m.graph.nodes[1].name, "second");
}

TEST(ImportTensor, FloatData) {
  auto t = typed("w", DType::F32, {2});
  t.add_float_data(1.5f);
  t.add_float_data(-2.0f);
  const Tensor w = import_initializer(t).graph.initializers.at("w");
  EXPECT_EQ(w.dims(), (Dims{2}));
  EXPECT_EQ(w.data<float>()[0], 1.5f);
  EXPECT_EQ(w.data<float>()[1], -2.0f);
}

TEST(ImportTensor, Int32DataCarriesHalfBitPatterns) {
  auto t = typed("h", DType::F16, {2});
  t.add_int32_data(float_to_half(1.5f));
  t.add_int32_data(float_to_half(-3.0f));
  const Tensor h = import_initializer(t).graph.initializers.at("h");
  EXPECT_EQ(h.get_f64(0), 1.5);
  EXPECT_EQ(h.get_f64(1), -3.0);
}

TEST(ImportTensor, Int32DataCarriesBFloat16) {
  auto t = typed("b", DType::BF16, {1});
  t.add_int32_data(float_to_bfloat16(2.0f));
  EXPECT_EQ(import_initializer(t).graph.initializers.at("b").get_f64(0), 2.0);
}

TEST(ImportTensor, Int32DataCarriesBool) {
  auto t = typed("flags", DType::Bool, {3});
  for (int v : {1, 0, 1}) t.add_int32_data(v);
  const Tensor f = import_initializer(t).graph.initializers.at("flags");
  EXPECT_EQ(f.data<uint8_t>()[0], 1);
  EXPECT_EQ(f.data<uint8_t>()[1], 0);
  EXPECT_EQ(f.data<uint8_t>()[2], 1);
}

TEST(ImportTensor, Int32DataCarriesInt8AndUint16) {
  auto t = typed("q", DType::I8, {3});
  for (int v : {-128, -1, 127}) t.add_int32_data(v);
  const Tensor q = import_initializer(t).graph.initializers.at("q");
  EXPECT_EQ(q.data<int8_t>()[0], -128);
  EXPECT_EQ(q.data<int8_t>()[1], -1);
  EXPECT_EQ(q.data<int8_t>()[2], 127);
  auto u = typed("u", DType::U16, {1});
  u.add_int32_data(65535);
  EXPECT_EQ(import_initializer(u).graph.initializers.at("u").data<uint16_t>()[0], 65535);
}

TEST(ImportTensor, Int64Data) {
  auto t = typed("i", DType::I64, {2});
  t.add_int64_data(INT64_MIN);
  t.add_int64_data(42);
  const Tensor i = import_initializer(t).graph.initializers.at("i");
  EXPECT_EQ(i.data<int64_t>()[0], INT64_MIN);
  EXPECT_EQ(i.data<int64_t>()[1], 42);
}

TEST(ImportTensor, DoubleData) {
  auto t = typed("d", DType::F64, {1});
  t.add_double_data(0.1);
  EXPECT_EQ(import_initializer(t).graph.initializers.at("d").data<double>()[0], 0.1);
}

TEST(ImportTensor, Uint64DataForUint64AndUint32) {
  auto t = typed("u64", DType::U64, {1});
  t.add_uint64_data(UINT64_MAX);
  EXPECT_EQ(import_initializer(t).graph.initializers.at("u64").data<uint64_t>()[0], UINT64_MAX);
  auto s = typed("u32", DType::U32, {1});
  s.add_uint64_data(4000000000u);
  EXPECT_EQ(import_initializer(s).graph.initializers.at("u32").data<uint32_t>()[0], 4000000000u);
}

TEST(ImportTensor, RawData) {
  auto t = testing::raw_tensor("r", DType::I32, {2, 2},
                               testing::bytes_of(std::vector<int32_t>{1, -2, 3, -4}));
  const Tensor r = import_initializer(t).graph.initializers.at("r");
  EXPECT_EQ(r.dims(), (Dims{2, 2}));
  EXPECT_EQ(r.data<int32_t>()[3], -4);
}

TEST(ImportTensor, EmptyTensor) {
  auto t = testing::raw_tensor("e", DType::F32, {0, 3}, "");
  EXPECT_EQ(import_initializer(t).graph.initializers.at("e").numel(), 0);
}

TEST(ImportTensor, StringData) {
  auto t = typed("s", DType::String, {2});
  t.add_string_data("hello");
  t.add_string_data(std::string("a\0b", 3));
  const Tensor s = import_initializer(t).graph.initializers.at("s");
  EXPECT_EQ(s.strings()[0], "hello");
  EXPECT_EQ(s.strings()[1], std::string("a\0b", 3));
}

TEST(ImportTensor, Int4RawDataUnpacksLowNibbleFirstWithSignExtension) {
  // Bytes 0x9f 0x07 hold nibbles f, 9, 7, 0: int4 -1, -7, 7 (the last nibble is padding).
  auto t = testing::raw_tensor("n", DType::I4, {3}, "\x9f\x07");
  const Tensor n = import_initializer(t).graph.initializers.at("n");
  EXPECT_EQ(n.data<int8_t>()[0], -1);
  EXPECT_EQ(n.data<int8_t>()[1], -7);
  EXPECT_EQ(n.data<int8_t>()[2], 7);
  auto u = testing::raw_tensor("u", DType::U4, {3}, "\x9f\x07");
  const Tensor un = import_initializer(u).graph.initializers.at("u");
  EXPECT_EQ(un.data<uint8_t>()[0], 15);
  EXPECT_EQ(un.data<uint8_t>()[1], 9);
  EXPECT_EQ(un.data<uint8_t>()[2], 7);
}

TEST(ImportTensor, Int4PackedInInt32Data) {
  auto t = typed("n", DType::I4, {3});
  t.add_int32_data(0x9f);
  t.add_int32_data(0x07);
  const Tensor n = import_initializer(t).graph.initializers.at("n");
  EXPECT_EQ(n.data<int8_t>()[0], -1);
  EXPECT_EQ(n.data<int8_t>()[1], -7);
  EXPECT_EQ(n.data<int8_t>()[2], 7);
}

TEST(ImportTensor, Int4WithTooFewBytesIsAnError) {
  auto t = testing::raw_tensor("n", DType::I4, {5}, "\x9f\x07");
  EXPECT_THROW(import_initializer(t), Error);
}

TEST(ImportSparse, LinearIndices) {
  ModelBuilder b;
  auto* sp = b.graph().add_sparse_initializer();
  *sp->mutable_values() =
      testing::raw_tensor("s", DType::F32, {2}, testing::bytes_of(std::vector<float>{5, 6}));
  *sp->mutable_indices() =
      testing::raw_tensor("si", DType::I64, {2}, testing::bytes_of(std::vector<int64_t>{1, 5}));
  sp->add_dims(2);
  sp->add_dims(3);
  b.output("s", DType::F32, std::nullopt);
  const Tensor s = import(b).graph.initializers.at("s");
  ASSERT_EQ(s.dims(), (Dims{2, 3}));
  const std::vector<float> want{0, 5, 0, 0, 0, 6};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.data<float>()[i], want[static_cast<size_t>(i)]) << i;
}

TEST(ImportSparse, CoordinateIndices) {
  ModelBuilder b;
  auto* sp = b.graph().add_sparse_initializer();
  *sp->mutable_values() =
      testing::raw_tensor("s", DType::I32, {2}, testing::bytes_of(std::vector<int32_t>{7, 8}));
  *sp->mutable_indices() = testing::raw_tensor("si", DType::I64, {2, 2},
                                               testing::bytes_of(std::vector<int64_t>{0, 1, 1, 2}));
  sp->add_dims(2);
  sp->add_dims(3);
  b.output("s", DType::I32, std::nullopt);
  const Tensor s = import(b).graph.initializers.at("s");
  EXPECT_EQ(s.data<int32_t>()[1], 7);
  EXPECT_EQ(s.data<int32_t>()[5], 8);
  EXPECT_EQ(s.data<int32_t>()[0], 0);
}

TEST(ImportSparse, IndexOutsideTheShapeIsAnError) {
  ModelBuilder b;
  auto* sp = b.graph().add_sparse_initializer();
  *sp->mutable_values() =
      testing::raw_tensor("s", DType::F32, {1}, testing::bytes_of(std::vector<float>{5}));
  *sp->mutable_indices() =
      testing::raw_tensor("si", DType::I64, {1}, testing::bytes_of(std::vector<int64_t>{6}));
  sp->add_dims(2);
  sp->add_dims(3);
  b.output("s", DType::F32, std::nullopt);
  EXPECT_THROW(import(b), Error);
}

// One Constant node with attribute `attr` set by `set`, imported: its value.
Tensor constant(const std::string& attr, onnx::AttributeProto::AttributeType type,
                const std::function<void(onnx::AttributeProto&)>& set) {
  ModelBuilder b;
  auto& n = b.node("Constant", {}, {"c"}, "const");
  auto* a = n.add_attribute();
  a->set_name(attr);
  a->set_type(type);
  set(*a);
  b.output("c", DType::Undefined, std::nullopt);
  ir::Model m = import(b);
  EXPECT_TRUE(m.graph.nodes.empty()) << "a Constant must become an initializer";
  return m.graph.initializers.at("c");
}

TEST(ImportConstant, EveryValueAttributeBecomesAnInitializer) {
  using A = onnx::AttributeProto;
  Tensor t = constant("value", A::TENSOR, [](A& a) {
    *a.mutable_t() =
        testing::raw_tensor("", DType::F32, {2}, testing::bytes_of(std::vector<float>{1, 2}));
  });
  EXPECT_EQ(t.data<float>()[1], 2.0f);

  t = constant("value_float", A::FLOAT, [](A& a) { a.set_f(2.5f); });
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.rank(), 0u);
  EXPECT_EQ(t.data<float>()[0], 2.5f);

  t = constant("value_floats", A::FLOATS, [](A& a) {
    a.add_floats(1);
    a.add_floats(3);
  });
  EXPECT_EQ(t.dims(), (Dims{2}));
  EXPECT_EQ(t.data<float>()[1], 3.0f);

  t = constant("value_int", A::INT, [](A& a) { a.set_i(-7); });
  EXPECT_EQ(t.dtype(), DType::I64);
  EXPECT_EQ(t.data<int64_t>()[0], -7);

  t = constant("value_ints", A::INTS, [](A& a) {
    a.add_ints(4);
    a.add_ints(5);
    a.add_ints(6);
  });
  EXPECT_EQ(t.dims(), (Dims{3}));
  EXPECT_EQ(t.data<int64_t>()[2], 6);

  t = constant("value_string", A::STRING, [](A& a) { a.set_s("hi"); });
  EXPECT_EQ(t.strings()[0], "hi");

  t = constant("value_strings", A::STRINGS, [](A& a) {
    a.add_strings("x");
    a.add_strings("yz");
  });
  EXPECT_EQ(t.strings()[1], "yz");

  t = constant("sparse_value", A::SPARSE_TENSOR, [](A& a) {
    auto* sp = a.mutable_sparse_tensor();
    *sp->mutable_values() =
        testing::raw_tensor("", DType::F32, {1}, testing::bytes_of(std::vector<float>{9}));
    *sp->mutable_indices() =
        testing::raw_tensor("", DType::I64, {1}, testing::bytes_of(std::vector<int64_t>{2}));
    sp->add_dims(3);
  });
  EXPECT_EQ(t.dims(), (Dims{3}));
  EXPECT_EQ(t.data<float>()[2], 9.0f);
}

TEST(ImportConstant, TypelessAttributeIsInferredFromItsField) {
  // Old exporters leave AttributeProto.type unset.
  Tensor t = constant("value_int", onnx::AttributeProto::UNDEFINED,
                      [](onnx::AttributeProto& a) { a.set_i(3); });
  EXPECT_EQ(t.data<int64_t>()[0], 3);
}

// local.Scale(x) = x * Constant(alpha), alpha an attribute of the call (default 2).
ModelBuilder scale_model(std::optional<float> alpha) {
  ModelBuilder b;
  b.opset("local", 1);
  auto* f = b.proto().add_functions();
  f->set_name("Scale");
  f->set_domain("local");
  f->add_input("a");
  f->add_output("b");
  f->add_attribute("alpha");
  auto* dflt = f->add_attribute_proto();
  dflt->set_name("alpha");
  dflt->set_type(onnx::AttributeProto::FLOAT);
  dflt->set_f(2.0f);
  auto* op = f->add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* c = f->add_node();
  c->set_op_type("Constant");
  c->add_output("k");
  auto* ref = c->add_attribute();
  ref->set_name("value_float");
  ref->set_type(onnx::AttributeProto::FLOAT);
  ref->set_ref_attr_name("alpha");
  auto* mul = f->add_node();
  mul->set_op_type("Mul");
  mul->set_name("mul");
  mul->add_input("a");
  mul->add_input("k");
  mul->add_output("b");
  b.input("x", DType::F32, DeclDims{2});
  auto& call = b.node("Scale", {"x"}, {"y"}, "call", "local");
  if (alpha) testing::add_float_attr(call, "alpha", *alpha);
  b.output("y", DType::F32, DeclDims{2});
  return b;
}

TEST(ImportFunction, CallIsInlinedWithTheCallersAttribute) {
  ir::Model m = import(scale_model(3.5f));
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  const ir::Node& mul = m.graph.nodes[0];
  EXPECT_EQ(mul.op_type, "Mul");
  EXPECT_EQ(mul.opset, 17);
  EXPECT_EQ(mul.inputs[0], "x");
  EXPECT_EQ(mul.outputs[0], "y");
  const Tensor& k = m.graph.initializers.at(mul.inputs[1]);
  EXPECT_EQ(k.data<float>()[0], 3.5f);
}

TEST(ImportFunction, AttributeDefaultAppliesWhenTheCallOmitsIt) {
  ir::Model m = import(scale_model(std::nullopt));
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(m.graph.initializers.at(m.graph.nodes[0].inputs[1]).data<float>()[0], 2.0f);
}

TEST(ImportFunction, InlinedModelRuns) {
  Session s = Session::from_bytes(scale_model(3.0f).bytes());
  Tensor x(DType::F32, {2});
  x.data<float>()[0] = 1;
  x.data<float>()[1] = -2;
  auto y = s.run_tensors({{"x", x}});
  EXPECT_EQ(y[0].data<float>()[0], 3.0f);
  EXPECT_EQ(y[0].data<float>()[1], -6.0f);
}

TEST(ImportTypes, SequenceAndOptionalInputs) {
  ModelBuilder b;
  auto& seq = *b.graph().add_input();
  seq.set_name("s");
  testing::set_tensor_type(seq.mutable_type()->mutable_sequence_type()->mutable_elem_type(),
                           DType::F32, std::nullopt);
  auto& opt = *b.graph().add_input();
  opt.set_name("o");
  testing::set_tensor_type(opt.mutable_type()->mutable_optional_type()->mutable_elem_type(),
                           DType::I64, DeclDims{3});
  *b.graph().add_output() = seq;
  *b.graph().add_output() = opt;

  ir::Model m = import(b);
  ASSERT_EQ(m.graph.inputs.size(), 2u);
  EXPECT_EQ(m.graph.inputs[0].type.kind, ir::Type::Kind::Sequence);
  EXPECT_EQ(m.graph.inputs[0].type.inner->elem, DType::F32);
  EXPECT_EQ(m.graph.inputs[1].type.kind, ir::Type::Kind::Optional);
  EXPECT_EQ(m.graph.inputs[1].type.inner->elem, DType::I64);

  Session s = Session::from_bytes(b.bytes());
  ASSERT_EQ(s.inputs().size(), 2u);
  EXPECT_EQ(s.inputs()[0].kind, "sequence");
  EXPECT_EQ(s.inputs()[0].dtype, DType::F32);
  EXPECT_EQ(s.inputs()[1].kind, "optional");
  EXPECT_EQ(s.inputs()[1].dtype, DType::I64);
  EXPECT_EQ(s.inputs()[1].dims, (Dims{3}));

  // Passed through: the sequence comes back; the omitted optional comes back empty.
  std::map<std::string, Value> in;
  in["s"] = Value::of_sequence({Tensor(DType::F32, {2}), Tensor(DType::F32, {})}, DType::F32);
  auto out = s.run(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].is_sequence());
  EXPECT_EQ(out[0].sequence.size(), 2u);
  EXPECT_TRUE(out[1].is_none());
}

}  // namespace
}  // namespace kpt
