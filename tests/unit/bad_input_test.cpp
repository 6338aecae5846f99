// Bad input of every kind named by the robustness requirement: each must end in a kpt::Error
// whose message names the problem, never a crash, a hang or an allocation of what the model
// merely declares.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "onnx/import.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

namespace fs = std::filesystem;
using testing::DeclDims;
using testing::ModelBuilder;

// Runs `f`, expecting an exception of type E whose message contains every one of `parts`.
template <typename E = Error>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return;
  }
  ADD_FAILURE() << "no exception; expected one mentioning '" << (parts.empty() ? "" : parts[0])
                << "'";
}

// ---------------------------------------------------------------- files that are not models

TEST(BadInputFile, EveryTruncationIsAnErrorNotACrash) {
  const std::string full = testing::add_model_bytes();
  int failures = 0;
  for (size_t len = 0; len < full.size(); ++len) {
    try {
      Session::from_bytes(full.substr(0, len));
    } catch (const Error&) {
      ++failures;
    }
  }
  // Most prefixes end inside a field; those must be reported, not half-loaded.
  EXPECT_GT(failures, static_cast<int>(full.size()) / 2);
  expect_error([&] { Session::from_bytes(full.substr(0, full.size() - 3)); }, {"ONNX"});
}

TEST(BadInputFile, EmptyFileIsNamed) {
  expect_error([] { Session::from_bytes(""); }, {"empty"});
}

TEST(BadInputFile, NonOnnxBytesAreNamed) {
  expect_error([] { Session::from_bytes("\x89PNG\r\n\x1a\n this is an image, not a model"); },
               {"ONNX"});
  expect_error([] { Session::from_bytes("{\"json\": true}"); }, {"ONNX"});
}

TEST(BadInputFile, MissingFileIsNamed) {
  expect_error([] { Session::open("/nonexistent/dir/model.onnx"); },
               {"cannot open", "/nonexistent/dir/model.onnx"});
}

// ---------------------------------------------------------------- malformed graphs

TEST(BadInputGraph, CycleNamesItsNodes) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "b"}, {"a"}, "first");
  b.node("Add", {"a", "x"}, {"b"}, "second");
  b.output("b", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"cycle", "first", "second"});
}

TEST(BadInputGraph, SelfLoopIsACycle) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "y"}, {"y"}, "loop");
  b.output("y", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"cycle", "loop"});
}

TEST(BadInputGraph, DanglingReferenceNamesTheValue) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "ghost"}, {"y"}, "adder");
  b.output("y", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"ghost", "adder"});
}

TEST(BadInputGraph, OutputNeverProducedIsNamed) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "x"}, {"y"}, "adder");
  b.output("z", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"'z'", "never produced"});
}

TEST(BadInputGraph, TwoProducersOfOneValueAreNamed) {
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{2});
  b.node("Add", {"x", "x"}, {"y"}, "one");
  b.node("Mul", {"x", "x"}, {"y"}, "two");
  b.output("y", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"'y'", "one", "two"});
}

// ---------------------------------------------------------------- unknown ops

TEST(BadInputOp, UnknownOpsAreAllListedWithDomainOpsetAndNodes) {
  ModelBuilder b(17);
  b.opset("com.example", 3);
  b.input("x", DType::F32, DeclDims{2});
  b.node("FrobnicateXyz", {"x"}, {"a"}, "frob_a");
  b.node("FrobnicateXyz", {"a"}, {"b"}, "frob_b");
  b.node("Twiddle", {"b"}, {"c"}, "twiddler", "com.example");
  b.node("Add", {"c", "c"}, {"y"}, "adder");
  b.output("y", DType::F32, DeclDims{2});
  expect_error<Unsupported>([&] { Session::from_bytes(b.bytes()); },
                            {"FrobnicateXyz", "opset 17", "frob_a", "frob_b", "com.example",
                             "Twiddle", "opset 3", "twiddler"});
}

// ---------------------------------------------------------------- external data

// A fresh folder per test, removed afterwards, so tests never see each other's files.
class BadInputExternal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kpt-bad-input-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "model";
    fs::create_directory(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static void write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  // Four floats 1, 2, 3, 4 after `pad` bytes of padding.
  static std::string weights(size_t pad = 0) {
    return std::string(pad, '\0') + testing::bytes_of(std::vector<float>{1, 2, 3, 4});
  }

  // y = x + w, where w (f32[dims]) lives in external data described by `kv`.
  std::string write_model(const std::vector<std::pair<std::string, std::string>>& kv,
                          const DeclDims& dims = {4}) {
    ModelBuilder b;
    b.input("x", DType::F32, DeclDims{4});
    auto& w = b.initializer("w", DType::F32, dims, "");
    w.clear_raw_data();
    w.set_data_location(onnx::TensorProto::EXTERNAL);
    for (const auto& [k, v] : kv) {
      auto* e = w.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    b.node("Add", {"x", "w"}, {"y"}, "add");
    b.output("y", DType::F32, DeclDims{4});
    const fs::path path = dir_ / "model.onnx";
    write(path, b.bytes());
    return path.string();
  }

  fs::path root_, dir_;
};

TEST_F(BadInputExternal, ValidDataLoadsWithItsValues) {
  write(dir_ / "w.bin", weights(64));
  Session s =
      Session::open(write_model({{"location", "w.bin"}, {"offset", "64"}, {"length", "16"}}));
  Tensor x(DType::F32, {4});
  auto y = s.run_tensors({{"x", x}});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].data<float>()[0], 1.0f);
  EXPECT_EQ(y[0].data<float>()[3], 4.0f);
}

TEST_F(BadInputExternal, ValidDataInASubfolderLoads) {
  fs::create_directory(dir_ / "weights");
  write(dir_ / "weights" / "w.bin", weights());
  Session s = Session::open(write_model({{"location", "weights/w.bin"}}));
  auto y = s.run_tensors({{"x", Tensor(DType::F32, {4})}});
  EXPECT_EQ(y[0].data<float>()[1], 2.0f);
}

TEST_F(BadInputExternal, AbsolutePathIsRejected) {
  write(root_ / "w.bin", weights());
  const std::string abs = (root_ / "w.bin").string();
  expect_error([&] { Session::open(write_model({{"location", abs}})); }, {"absolute", "'w'"});
}

TEST_F(BadInputExternal, DotDotIsRejected) {
  write(root_ / "x", weights());
  expect_error([&] { Session::open(write_model({{"location", "../x"}})); }, {"..", "'w'"});
  expect_error([&] { Session::open(write_model({{"location", "sub/../../x"}})); }, {".."});
}

TEST_F(BadInputExternal, SymlinkLeavingTheFolderIsRejected) {
  write(root_ / "secret.bin", weights());
  fs::create_symlink(root_ / "secret.bin", dir_ / "w.bin");
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}}));
      },
      {"outside the model's folder", "w.bin"});
}

TEST_F(BadInputExternal, SymlinkedFolderLeavingTheFolderIsRejected) {
  fs::create_directory(root_ / "elsewhere");
  write(root_ / "elsewhere" / "w.bin", weights());
  fs::create_directory_symlink(root_ / "elsewhere", dir_ / "sub");
  expect_error(
      [&] {
        Session::open(write_model({{"location", "sub/w.bin"}}));
      },
      {"outside the model's folder"});
}

TEST_F(BadInputExternal, OffsetPastTheEndIsRejected) {
  write(dir_ / "w.bin", weights());
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"offset", "4096"}}));
      },
      {"offset 4096", "beyond the end", "16 bytes"});
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"offset", "-8"}}));
      },
      {"offset -8"});
}

TEST_F(BadInputExternal, LengthPastTheEndIsRejected) {
  write(dir_ / "w.bin", weights());
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"offset", "8"}, {"length", "16"}}));
      },
      {"length 16", "past the end"});
}

TEST_F(BadInputExternal, LengthNotMatchingTheShapeIsRejected) {
  write(dir_ / "w.bin", weights());
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"length", "12"}}));
      },
      {"12 bytes", "needs 16"});
  // The whole file (no length) for a larger declared shape.
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}}, {8}));
      },
      {"16 bytes", "needs 32"});
}

TEST_F(BadInputExternal, MissingFileIsNamed) {
  expect_error(
      [&] {
        Session::open(write_model({{"location", "nothere.bin"}}));
      },
      {"cannot open", "nothere.bin"});
}

TEST_F(BadInputExternal, DirectoryIsNotAFile) {
  fs::create_directory(dir_ / "adir");
  expect_error([&] { Session::open(write_model({{"location", "adir"}})); }, {"not a regular file"});
}

TEST_F(BadInputExternal, MalformedNumbersAreErrors) {
  write(dir_ / "w.bin", weights());
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"offset", "abc"}}));
      },
      {"offset", "abc"});
  expect_error(
      [&] {
        Session::open(write_model({{"location", "w.bin"}, {"length", "99999999999999999999999"}}));
      },
      {"length"});
}

TEST_F(BadInputExternal, ElementCountOverflowingTheByteCountIsRejected) {
  // 2^61 doubles are 2^64 bytes, which wraps to 0 in 64 bits; a zero-length range at the end
  // of the file must not become a view claiming 2^61 elements.
  write(dir_ / "w.bin", weights());
  expect_error(
      [&] {
        ModelBuilder b;
        auto& w = b.initializer("w", DType::F64, {int64_t{1} << 61}, "");
        w.clear_raw_data();
        w.set_data_location(onnx::TensorProto::EXTERNAL);
        auto* e = w.add_external_data();
        e->set_key("location");
        e->set_value("w.bin");
        e = w.add_external_data();
        e->set_key("offset");
        e->set_value("16");
        b.output("w", DType::F64, std::nullopt);
        write(dir_ / "model.onnx", b.bytes());
        Session::open((dir_ / "model.onnx").string());
      },
      {"'w'"});
}

TEST(BadInputExternalBytes, ModelFromBytesCannotUseExternalData) {
  ModelBuilder b;
  auto& w = b.initializer("w", DType::F32, {4}, "");
  w.clear_raw_data();
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = w.add_external_data();
  e->set_key("location");
  e->set_value("w.bin");
  b.output("w", DType::F32, DeclDims{4});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"from bytes", "'w'"});
}

// ---------------------------------------------------------------- absurd dimensions

TEST(BadInputDims, InitializerWithOverflowingDimsIsRejected) {
  ModelBuilder b;
  b.initializer("huge", DType::F32, {int64_t{1} << 40, int64_t{1} << 40}, "abcd");
  b.output("huge", DType::F32, std::nullopt);
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"huge"});
}

TEST(BadInputDims, InitializerDeclaringTerabytesWithTinyDataIsRejected) {
  ModelBuilder b;
  b.initializer("big", DType::F32, {int64_t{1} << 20, int64_t{1} << 20}, "abcd");
  b.output("big", DType::F32, std::nullopt);
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"'big'", "4 bytes"});
}

TEST(BadInputDims, TypedFieldsShorterThanTheShapeAreRejected) {
  ModelBuilder b;
  onnx::TensorProto t;
  t.set_name("big");
  t.set_data_type(static_cast<int32_t>(DType::F32));
  t.add_dims(int64_t{1} << 20);
  t.add_dims(int64_t{1} << 20);
  t.add_float_data(1.0f);
  b.initializer(t);
  b.output("big", DType::F32, std::nullopt);
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"'big'", "float_data holds 1"});
}

TEST(BadInputDims, Int32DataIsCountedBeforeAllocating) {
  // int32_data serves every type of 32 bits or fewer, sub-byte types included; a 4 TiB shape
  // with two values must be refused for its values, not attempted as an allocation.
  for (DType dtype : {DType::I32, DType::F16, DType::Bool, DType::I4}) {
    ModelBuilder b;
    onnx::TensorProto t;
    t.set_name("big");
    t.set_data_type(static_cast<int32_t>(dtype));
    t.add_dims(int64_t{1} << 40);
    t.add_int32_data(1);
    t.add_int32_data(2);
    b.initializer(t);
    b.output("big", dtype, std::nullopt);
    expect_error([&] { Session::from_bytes(b.bytes()); }, {"'big'", "int32_data holds 2"});
  }
}

TEST(BadInputDims, NegativeInitializerDimIsRejected) {
  ModelBuilder b;
  b.initializer("neg", DType::F32, {-4}, "");
  b.output("neg", DType::F32, std::nullopt);
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"'neg'", "negative"});
}

TEST(BadInputDims, HugeSparseInitializerIsRejectedBeforeAllocating) {
  ModelBuilder b;
  auto* sp = b.graph().add_sparse_initializer();
  *sp->mutable_values() =
      testing::raw_tensor("sparse_w", DType::F32, {1}, testing::bytes_of(std::vector<float>{1}));
  *sp->mutable_indices() = testing::raw_tensor("sparse_w_idx", DType::I64, {1},
                                               testing::bytes_of(std::vector<int64_t>{0}));
  sp->add_dims(int64_t{1} << 40);
  b.output("sparse_w", DType::F32, std::nullopt);
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"sparse_w"});
}

TEST(BadInputDims, DeclaredHugeInputIsNotAllocated) {
  // A graph input declared f32[1e15, 1e15]: loading only records the declaration.
  const int64_t huge = 1000000000000000;
  ModelBuilder b;
  b.input("x", DType::F32, DeclDims{huge, huge});
  b.node("Add", {"x", "x"}, {"y"}, "add");
  b.output("y", DType::F32, DeclDims{huge, huge});
  Session s = Session::from_bytes(b.bytes());
  ASSERT_EQ(s.inputs().size(), 1u);
  EXPECT_EQ(s.inputs()[0].dims, (Dims{huge, huge}));
  expect_error(
      [&] {
        s.run_tensors({{"x", Tensor(DType::F32, {2, 2})}});
      },
      {"'x'", "1000000000000000"});
}

TEST(BadInputDims, RunTimeHugeBroadcastIsAnErrorNotACrash) {
  // [2^20,1] + [1,2^20] broadcasts to 2^40 floats (4 TiB).
  ModelBuilder b;
  b.input("a", DType::F32, DeclDims{-1, 1});
  b.input("b", DType::F32, DeclDims{1, -1});
  b.node("Add", {"a", "b"}, {"y"}, "broadcaster");
  b.output("y", DType::F32, std::nullopt);
  Session s = Session::from_bytes(b.bytes());
  const int64_t n = int64_t{1} << 20;
  expect_error(
      [&] {
        s.run_tensors({{"a", Tensor(DType::F32, {n, 1})}, {"b", Tensor(DType::F32, {1, n})}});
      },
      {"broadcaster"});
}

// ---------------------------------------------------------------- deep nesting

// A chain of If nodes, each holding the next in its then_branch, `depth` levels deep.
std::string nested_if_model(int depth) {
  ModelBuilder b;
  b.input("cond", DType::Bool, DeclDims{});
  onnx::GraphProto* g = &b.graph();
  for (int level = 0; level < depth; ++level) {
    auto* n = g->add_node();
    n->set_op_type("If");
    n->set_name("if" + std::to_string(level));
    n->add_input("cond");
    n->add_output("out" + std::to_string(level));
    if (level == 0) testing::set_value_info(g->add_output(), "out0", DType::Bool, DeclDims{});
    auto* a = n->add_attribute();
    a->set_name("then_branch");
    a->set_type(onnx::AttributeProto::GRAPH);
    g = a->mutable_g();
    g->set_name("level" + std::to_string(level + 1));
    testing::set_value_info(g->add_output(), "out" + std::to_string(level + 1), DType::Bool,
                            DeclDims{});
  }
  auto* id = g->add_node();
  id->set_op_type("Identity");
  id->add_input("cond");
  id->add_output("out" + std::to_string(depth));
  return b.bytes();
}

TEST(BadInputNesting, ThousandNestedIfsAreAClearError) {
  expect_error([] { Session::from_bytes(nested_if_model(1000)); }, {"nest", "64"});
}

TEST(BadInputNesting, JustPastTheLimitIsAClearError) {
  expect_error([] { Session::from_bytes(nested_if_model(65)); }, {"nest", "64"});
}

TEST(BadInputNesting, AtTheLimitImportsAndOnlyLacksTheOps) {
  // 64 levels are allowed: the import succeeds; this build may lack If and Identity kernels,
  // which is reported as unsupported, not as a nesting error.
  try {
    Session::from_bytes(nested_if_model(64));
  } catch (const Unsupported& e) {
    EXPECT_EQ(std::string(e.what()).find("nest"), std::string::npos) << e.what();
  }
}

TEST(BadInputNesting, RecursiveFunctionIsAClearError) {
  ModelBuilder b;
  b.opset("local", 1);
  auto* f = b.proto().add_functions();
  f->set_name("Recurse");
  f->set_domain("local");
  f->add_input("a");
  f->add_output("b");
  auto* op = f->add_opset_import();
  op->set_domain("local");
  op->set_version(1);
  auto* inner = f->add_node();
  inner->set_op_type("Recurse");
  inner->set_domain("local");
  inner->add_input("a");
  inner->add_output("b");
  b.input("x", DType::F32, DeclDims{2});
  b.node("Recurse", {"x"}, {"y"}, "call", "local");
  b.output("y", DType::F32, DeclDims{2});
  expect_error([&] { Session::from_bytes(b.bytes()); }, {"Recurse", "nest"});
}

// F0(x) = x + x; Fk(x) = F(k-1)(F(k-1)(x)): `levels` functions expand to 2^levels nodes.
std::string doubling_functions_model(int levels) {
  ModelBuilder b;
  b.opset("local", 1);
  for (int k = 0; k < levels; ++k) {
    auto* f = b.proto().add_functions();
    f->set_name("F" + std::to_string(k));
    f->set_domain("local");
    f->add_input("a");
    f->add_output("b");
    for (const auto& [dom, v] : {std::pair<std::string, int>{"", 17}, {"local", 1}}) {
      auto* op = f->add_opset_import();
      op->set_domain(dom);
      op->set_version(v);
    }
    auto add_call = [&](const std::string& in, const std::string& out) {
      auto* n = f->add_node();
      n->add_input(in);
      n->add_output(out);
      if (k == 0) {
        n->set_op_type("Add");
        n->add_input(in);
      } else {
        n->set_op_type("F" + std::to_string(k - 1));
        n->set_domain("local");
      }
    };
    if (k == 0) {
      add_call("a", "b");
    } else {
      add_call("a", "t");
      add_call("t", "b");
    }
  }
  b.input("x", DType::F32, DeclDims{2});
  b.node("F" + std::to_string(levels - 1), {"x"}, {"y"}, "call", "local");
  b.output("y", DType::F32, DeclDims{2});
  return b.bytes();
}

TEST(BadInputNesting, ExponentialFunctionInliningIsCapped) {
  onnx_import::ImportLimits limits;
  limits.max_inlined_nodes = 1000;
  // 2^9 = 512 nodes fit; 2^11 do not.
  EXPECT_EQ(onnx_import::import_bytes(doubling_functions_model(10), "", limits).graph.nodes.size(),
            512u);
  expect_error([&] { onnx_import::import_bytes(doubling_functions_model(12), "", limits); },
               {"more than 1000 nodes"});
}

// ---------------------------------------------------------------- run-time inputs

Session add_session() {
  return Session::from_bytes(testing::add_model_bytes());
}

TEST(BadInputRun, UnknownInputNameIsNamedWithTheRealOnes) {
  Session s = add_session();
  expect_error(
      [&] {
        s.run_tensors({{"x", Tensor(DType::F32, {2, 3})}, {"bogus", Tensor()}});
      },
      {"unknown input 'bogus'", "x"});
}

TEST(BadInputRun, WrongDtypeNamesExpectedAndActual) {
  Session s = add_session();
  expect_error(
      [&] {
        s.run_tensors({{"x", Tensor(DType::I64, {2, 3})}});
      },
      {"'x'", std::string(dtype_name(DType::F32)), std::string(dtype_name(DType::I64))});
}

TEST(BadInputRun, WrongRankNamesExpectedAndActual) {
  Session s = add_session();
  expect_error(
      [&] {
        s.run_tensors({{"x", Tensor(DType::F32, {6})}});
      },
      {"'x'", "rank 2", "[2,3]", "[6]"});
}

TEST(BadInputRun, WrongDimNamesTheDim) {
  Session s = add_session();
  expect_error(
      [&] {
        s.run_tensors({{"x", Tensor(DType::F32, {2, 4})}});
      },
      {"'x'", "dimension 1", "must be 3"});
}

TEST(BadInputRun, MissingInputIsNamed) {
  Session s = add_session();
  expect_error([&] { s.run_tensors({}); }, {"missing input 'x'"});
}

TEST(BadInputRun, SequenceForATensorInputIsNamed) {
  Session s = add_session();
  std::map<std::string, Value> in;
  in["x"] = Value::of_sequence({Tensor(DType::F32, {2, 3})}, DType::F32);
  expect_error([&] { s.run(in); }, {"'x'", "expected a tensor"});
}

TEST(BadInputRun, UndefinedTensorIsAnErrorNotACrash) {
  Session s = add_session();
  expect_error([&] { s.run_tensors({{"x", Tensor()}}); }, {"'x'"});
}

}  // namespace
}  // namespace kpt
