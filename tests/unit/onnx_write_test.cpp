// The ONNX writer is the importer's inverse: import -> write -> import gives the same graph,
// initializers byte for byte, on every conformance model (subgraphs, every dtype, sparse and
// external data included), and external data written through the callback reads back.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "onnx/import.hpp"
#include "onnx/write.hpp"

namespace kpt {
namespace {

namespace fs = std::filesystem;

void expect_same_initializers(const ir::Graph& a, const ir::Graph& b, const std::string& where) {
  ASSERT_EQ(a.initializers.size(), b.initializers.size()) << where;
  for (const auto& [name, t] : a.initializers) {
    auto it = b.initializers.find(name);
    ASSERT_NE(it, b.initializers.end()) << where << ": " << name;
    const Tensor& u = it->second;
    ASSERT_EQ(t.dtype(), u.dtype()) << where << ": " << name;
    ASSERT_EQ(t.dims(), u.dims()) << where << ": " << name;
    if (t.dtype() == DType::String) {
      EXPECT_EQ(t.strings(), u.strings()) << where << ": " << name;
    } else if (t.nbytes()) {
      EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.nbytes()), 0) << where << ": " << name;
    }
  }
}

TEST(OnnxWrite, ConformanceModelsRoundTrip) {
  const fs::path root = fs::path(KPT_CONFORMANCE_DIR) / "node";
  if (!fs::exists(root)) GTEST_SKIP() << "no conformance cases at " << root;
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    const fs::path model = entry.path() / "model.onnx";
    if (!fs::exists(model)) continue;
    ir::Model first;
    try {
      first = onnx_import::import_file(model.string());
    } catch (const Error&) {
      continue;  // models the importer refuses are the importer tests' business
    }
    const std::string where = entry.path().filename().string();
    const std::string bytes = onnx_write::model_to_bytes(first);
    const ir::Model second = onnx_import::import_bytes(bytes, "");
    EXPECT_EQ(ir::print(first.graph), ir::print(second.graph)) << where;
    EXPECT_EQ(first.opsets, second.opsets) << where;
    EXPECT_EQ(first.metadata, second.metadata) << where;
    expect_same_initializers(first.graph, second.graph, where);
    ++checked;
  }
  EXPECT_GT(checked, 1000);
}

TEST(OnnxWrite, ExternalDataGoesThroughTheCallbackAndResolverReadsItBack) {
  ir::Model m;
  m.ir_version = 10;
  m.opsets[""] = 17;
  Tensor w(DType::F32, {16, 8});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = 0.25f * static_cast<float>(i) - 3;
  Tensor small = Tensor::scalar<int64_t>(DType::I64, 7);
  m.graph.initializers["w"] = w;
  m.graph.initializers["small"] = small;
  m.graph.inputs.push_back(
      {"x", ir::Type::tensor(DType::F32, ir::Shape{ir::Dim::sym("n"), ir::Dim::of(16)})});
  m.graph.outputs.push_back({"y", ir::Type::tensor(DType::F32)});
  ir::Node mm;
  mm.op_type = "MatMul";
  mm.opset = 17;
  mm.inputs = {"x", "w"};
  mm.outputs = {"y"};
  m.graph.nodes.push_back(mm);
  m.metadata["kpt.note"] = "written by the test";

  // The blob stands in for an engine file's weight section: 64-byte aligned offsets.
  auto blob = std::make_shared<std::vector<uint8_t>>();
  onnx_write::WriteOptions opt;
  opt.external = [&](const std::string&,
                     const Tensor& t) -> std::optional<onnx_write::ExternalData> {
    if (t.nbytes() < 64) return std::nullopt;
    const size_t offset = (blob->size() + 63) / 64 * 64;
    blob->resize(offset + t.nbytes());
    std::memcpy(blob->data() + offset, t.raw(), t.nbytes());
    return onnx_write::ExternalData{"weights", static_cast<int64_t>(offset),
                                    static_cast<int64_t>(t.nbytes())};
  };
  const std::string bytes = onnx_write::model_to_bytes(m, opt);
  EXPECT_LT(bytes.size(), w.nbytes()) << "the weight was written inline";

  // Storage::allocate gives 64-byte aligned memory, so the resolved tensor is a view.
  auto storage = Storage::allocate(blob->size());
  std::memcpy(storage->data, blob->data(), blob->size());
  const onnx_import::ExternalResolver resolve = [&](const std::string& location) {
    EXPECT_EQ(location, "weights");
    return onnx_import::MappedBytes{storage->data, blob->size(), storage};
  };
  const ir::Model back = onnx_import::import_bytes(bytes, "", {}, &resolve);
  expect_same_initializers(m.graph, back.graph, "external");
  EXPECT_EQ(back.graph.initializers.at("w").raw(), storage->data) << "copied instead of mapped";
  EXPECT_EQ(back.metadata.at("kpt.note"), "written by the test");
  EXPECT_EQ(ir::print(back.graph), ir::print(m.graph));

  // An unknown location is an error naming it, not a crash.
  const onnx_import::ExternalResolver nothing = [](const std::string&) {
    return onnx_import::MappedBytes{};
  };
  try {
    onnx_import::import_bytes(bytes, "", {}, &nothing);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'weights'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kpt
