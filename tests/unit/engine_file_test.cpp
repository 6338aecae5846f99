// Engine files (.kpt): onnx -> kpt -> run equals the ONNX session bit for bit at every
// precision, loads pack nothing, and damaged or foreign files are refused with a clear error.
#include "engine/engine_file.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

namespace fs = std::filesystem;
using testing::bytes_of;
using testing::ModelBuilder;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// x[N,64] -> MatMul(W1 64x96) + b1 -> Relu -> Gemm(W2 32x96, transB) + c2 -> y[N,32]: a packed
// MatMulBiasAct and a packed Gemm after fusion.
std::string mlp_model() {
  ModelBuilder b;
  b.input("x", DType::F32, testing::DeclDims{-1, 64});
  b.output("y", DType::F32, testing::DeclDims{-1, 32});
  b.initializer("w1", DType::F32, {64, 96}, bytes_of(random_floats(64 * 96, 1)));
  b.initializer("b1", DType::F32, {96}, bytes_of(random_floats(96, 2)));
  b.initializer("w2", DType::F32, {32, 96}, bytes_of(random_floats(32 * 96, 3)));
  b.initializer("c2", DType::F32, {32}, bytes_of(random_floats(32, 4)));
  b.node("MatMul", {"x", "w1"}, {"h0"}, "fc1");
  b.node("Add", {"h0", "b1"}, {"h1"}, "bias1");
  b.node("Relu", {"h1"}, {"h2"}, "relu1");
  auto& gemm = b.node("Gemm", {"h2", "w2", "c2"}, {"y"}, "fc2");
  testing::add_int_attr(gemm, "transB", 1);
  return b.bytes();
}

// x[1,16,12,12] -> Conv(32x16x3x3, pad 1) + bias -> Relu -> y: a packed (fused) convolution.
std::string conv_model() {
  ModelBuilder b;
  b.input("x", DType::F32, testing::DeclDims{1, 16, 12, 12});
  b.output("y", DType::F32, testing::DeclDims{1, 32, 12, 12});
  b.initializer("w", DType::F32, {32, 16, 3, 3}, bytes_of(random_floats(32 * 16 * 9, 5)));
  b.initializer("bias", DType::F32, {32}, bytes_of(random_floats(32, 6)));
  auto& conv = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv");
  testing::add_ints_attr(conv, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"y"}, "relu");
  return b.bytes();
}

class EngineFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpt_engine_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Optimizes `model_bytes` at `precision` and writes the engine; returns its path.
  std::string make_engine(const std::string& model_bytes, Precision precision,
                          const std::string& name = "model") {
    const std::string onnx = write(name + ".onnx", model_bytes);
    SessionOptions o;
    o.precision = precision;
    Session s = Session::open(onnx, o);
    const std::string kpt = (dir_ / (name + ".kpt")).string();
    s.save_engine(kpt);
    return kpt;
  }
  std::string error_of(const std::string& path, SessionOptions o = {}) {
    try {
      Session::open(path, o);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

std::map<std::string, Tensor> inputs_for(const std::string& model) {
  if (model == "conv") {
    Tensor x(DType::F32, {1, 16, 12, 12});
    const auto v = random_floats(static_cast<size_t>(x.numel()), 7);
    std::memcpy(x.raw(), v.data(), x.nbytes());
    return {{"x", x}};
  }
  Tensor x(DType::F32, {5, 64});
  const auto v = random_floats(static_cast<size_t>(x.numel()), 8);
  std::memcpy(x.raw(), v.data(), x.nbytes());
  return {{"x", x}};
}

void expect_bitwise_equal(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].dims(), b[i].dims());
    ASSERT_EQ(a[i].nbytes(), b[i].nbytes());
    EXPECT_EQ(std::memcmp(a[i].raw(), b[i].raw(), a[i].nbytes()), 0) << "output " << i;
  }
}

struct RoundTripCase {
  const char* model;
  Precision precision;
};

class EngineRoundTrip : public EngineFileTest,
                        public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(EngineRoundTrip, EqualsTheOnnxSessionBitwiseAndPacksNothingAtLoad) {
  const RoundTripCase c = GetParam();
  const std::string bytes = std::string(c.model) == "conv" ? conv_model() : mlp_model();
  const std::string onnx = write("m.onnx", bytes);
  SessionOptions o;
  o.precision = c.precision;
  Session from_onnx = Session::open(onnx, o);
  const std::string kpt = (dir_ / "m.kpt").string();
  from_onnx.save_engine(kpt);
  ASSERT_GT(from_onnx.load_info().packed_fresh, 0) << "the model has no packed kernel";

  Session from_engine = Session::open(kpt);  // default options: the engine's precision rules
  const LoadInfo info = from_engine.load_info();
  EXPECT_TRUE(info.from_engine);
  EXPECT_EQ(info.packed_fresh, 0) << "a kernel packed weights at load";
  EXPECT_GT(info.packed_reused, 0);
  EXPECT_EQ(from_engine.kernel_histogram(), from_onnx.kernel_histogram());
  EXPECT_EQ(from_engine.optimization_report(), from_onnx.optimization_report());
  const auto in = inputs_for(c.model);
  expect_bitwise_equal(from_engine.run_tensors(in), from_onnx.run_tensors(in));
  // A second load of the same file agrees too (nothing about the first load leaked into it).
  expect_bitwise_equal(Session::open(kpt).run_tensors(in), from_onnx.run_tensors(in));
}

INSTANTIATE_TEST_SUITE_P(
    Models, EngineRoundTrip,
    ::testing::Values(RoundTripCase{"mlp", Precision::FP32}, RoundTripCase{"mlp", Precision::BF16},
                      RoundTripCase{"mlp", Precision::INT8}, RoundTripCase{"conv", Precision::FP32},
                      RoundTripCase{"conv", Precision::BF16}),
    [](const auto& info) {
      return std::string(info.param.model) + "_" + precision_name(info.param.precision);
    });

TEST_F(EngineFileTest, AutoPrecisionDecisionsAreStoredAndRestoredWithoutRetuning) {
  const std::string onnx = write("m.onnx", mlp_model());
  SessionOptions o;
  o.precision = Precision::Auto;
  Session from_onnx = Session::open(onnx, o);
  const std::string kpt = (dir_ / "m.kpt").string();
  from_onnx.save_engine(kpt);
  Session from_engine = Session::open(kpt);
  EXPECT_EQ(from_engine.kernel_histogram(), from_onnx.kernel_histogram());
  EXPECT_EQ(from_engine.precision_report(), from_onnx.precision_report());
  EXPECT_EQ(from_engine.load_info().packed_fresh, 0);
  const auto in = inputs_for("mlp");
  expect_bitwise_equal(from_engine.run_tensors(in), from_onnx.run_tensors(in));
  const auto meta = nlohmann::json::parse(from_engine.load_info().engine_metadata);
  EXPECT_EQ(meta["options"]["precision"], "auto");
  EXPECT_TRUE(meta["auto_precision"]["output_cosine"].contains("y"));
  EXPECT_EQ(meta["source"]["file"], "m.onnx");
  EXPECT_EQ(meta["source"]["xxh3_128"].get<std::string>().size(), 32u);
}

TEST_F(EngineFileTest, IsRecognizedByMagicNotByExtension) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string renamed = (dir_ / "engine.onnx").string();
  fs::copy_file(kpt, renamed);
  EXPECT_TRUE(engine::is_engine_file(renamed));
  EXPECT_TRUE(Session::open(renamed).load_info().from_engine);
  EXPECT_FALSE(engine::is_engine_file((dir_ / "model.onnx").string()));
}

TEST_F(EngineFileTest, TruncatedFileIsRejectedBeforeMapping) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string bytes = read(kpt);
  const std::string half = write("half.kpt", bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(error_of(half).find("engine file truncated or extended: the header says " +
                                std::to_string(bytes.size()) + " bytes, the file has " +
                                std::to_string(bytes.size() / 2)),
            std::string::npos)
      << error_of(half);
  const std::string stub = write("stub.kpt", bytes.substr(0, 100));
  EXPECT_NE(error_of(stub).find("engine file truncated: 100 bytes, shorter than its 4096-byte"),
            std::string::npos)
      << error_of(stub);
}

TEST_F(EngineFileTest, OneFlippedByteInAnySectionFailsItsChecksum) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string bytes = read(kpt);
  const auto sections = engine::open_engine(kpt).sections;
  ASSERT_EQ(sections.size(), 5u);
  for (const auto& s : sections) {
    ASSERT_GT(s.size, 0u) << engine::section_name(s.kind);
    std::string bad = bytes;
    bad[s.offset + s.size / 2] ^= 0x10;
    const std::string path = write("flipped.kpt", bad);
    const std::string want =
        std::string("engine ") + engine::section_name(s.kind) + " section checksum mismatch";
    EXPECT_NE(error_of(path).find(want), std::string::npos) << error_of(path);
  }
  std::string bad_header = bytes;
  bad_header[70] ^= 0x01;  // inside the section table
  EXPECT_NE(error_of(write("header.kpt", bad_header)).find("engine header checksum mismatch"),
            std::string::npos);
}

TEST_F(EngineFileTest, TrustedLoadSkipsOnlyTheWeightChecksums) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string bytes = read(kpt);
  const auto sections = engine::open_engine(kpt).sections;
  SessionOptions trusted;
  trusted.verify_engine = false;
  for (const auto& s : sections) {
    std::string bad = bytes;
    bad[s.offset + s.size - 1] ^= 0x01;  // last byte: JSON and protobuf tails
    const std::string path = write("flipped.kpt", bad);
    const bool weights =
        s.kind == engine::SectionKind::Weights || s.kind == engine::SectionKind::Packed;
    if (weights) {
      EXPECT_EQ(error_of(path, trusted), "(no error)") << engine::section_name(s.kind);
    } else {
      EXPECT_NE(error_of(path, trusted).find("checksum mismatch"), std::string::npos)
          << engine::section_name(s.kind);
    }
  }
}

TEST_F(EngineFileTest, OtherFormatVersionIsRejectedNamingBoth) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  std::string bytes = read(kpt);
  const uint32_t v = engine::kFormatVersion + 1;
  std::memcpy(&bytes[16], &v, 4);
  EXPECT_NE(error_of(write("v2.kpt", bytes))
                .find("engine format version " + std::to_string(v) + ", this kpt reads version " +
                      std::to_string(engine::kFormatVersion) + ": re-run kpt optimize"),
            std::string::npos)
      << error_of(write("v2.kpt", bytes));
}

// Rewrites an engine file with its metadata's target changed by `edit` (checksums recomputed,
// as a file built elsewhere would have them).
std::string forge_target(const std::string& kpt, const std::string& out,
                         const std::function<void(nlohmann::json&)>& edit) {
  const engine::EngineFile f = engine::open_engine(kpt);
  engine::EngineWriter w(out);
  for (const auto& s : f.sections) {
    std::string body(f.section(s.kind));
    if (s.kind == engine::SectionKind::Metadata) {
      auto meta = nlohmann::json::parse(body);
      edit(meta["target"]);
      body = meta.dump();
    }
    w.begin_section(s.kind);
    w.append(body.data(), body.size());
    w.end_section();
  }
  w.finish();
  return out;
}

TEST_F(EngineFileTest, CpuMissingAFeatureIsRejectedUnlessRepackIsAllowed) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string forged = forge_target(kpt, (dir_ / "amx.kpt").string(), [](nlohmann::json& t) {
    t["cpu_features"].push_back("AMX-FAKE");
  });
  const std::string err = error_of(forged);
  EXPECT_NE(err.find("its prepacked weights need AMX-FAKE, which this CPU"), std::string::npos)
      << err;
  EXPECT_NE(err.find("Re-run kpt optimize on this machine, or load with --repack"),
            std::string::npos)
      << err;

  SessionOptions repack;
  repack.repack_engine = true;
  Session s = Session::open(forged, repack);
  EXPECT_EQ(s.load_info().packed_reused, 0);
  EXPECT_GT(s.load_info().packed_fresh, 0);
  const auto in = inputs_for("mlp");
  expect_bitwise_equal(s.run_tensors(in), Session::open(kpt).run_tensors(in));
}

TEST_F(EngineFileTest, OtherOneDnnVersionIsRejected) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string forged = forge_target(kpt, (dir_ / "dnnl.kpt").string(),
                                          [](auto& t) { t["onednn_version"] = "1.0.0 (forged)"; });
  EXPECT_NE(error_of(forged).find("oneDNN 1.0.0 (forged) layouts, this kpt uses oneDNN"),
            std::string::npos)
      << error_of(forged);
}

TEST_F(EngineFileTest, GpuEngineWithoutThatGpuIsRejected) {
  const std::string kpt = make_engine(mlp_model(), Precision::FP32);
  const std::string forged = forge_target(kpt, (dir_ / "cuda.kpt").string(), [](auto& t) {
    t["device"] = "cuda";
    t["device_index"] = 99;
    t["gpu_name"] = "Forged GPU";
    t["compute_capability"] = "9.0";
  });
  EXPECT_NE(error_of(forged).find("engine built for cuda:99 (Forged GPU, sm_90), but this machine "
                                  "has"),
            std::string::npos)
      << error_of(forged);
}

TEST_F(EngineFileTest, UnknownTargetIsRejectedAtOptimize) {
  Session s = Session::open(write("m.onnx", mlp_model()));
  try {
    s.save_engine((dir_ / "x.kpt").string(), EngineOptions{"tpu", "", {}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown target 'tpu'; expected cpu, cuda or cuda:N"),
              std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir_ / "x.kpt"));
  EXPECT_FALSE(fs::exists(dir_ / "x.kpt.tmp"));
}

TEST_F(EngineFileTest, FileWithoutMagicIsNotAnEngine) {
  const std::string path = write("junk.kpt", std::string(5000, 'x'));
  EXPECT_FALSE(engine::is_engine_file(path));
  try {
    engine::open_engine(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a kpt engine file"), std::string::npos);
  }
}

}  // namespace
}  // namespace kpt
