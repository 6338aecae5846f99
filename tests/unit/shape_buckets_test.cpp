#include "runtime/shape_buckets.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "backends/cpu/shape_plan_cache.hpp"
#include "core/compare.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

// Runs fn, which must fail with a kpt::Error whose message contains `part`.
template <typename F>
void expect_error(F&& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

void name_dims(onnx::ValueInfoProto& v, const std::vector<std::string>& symbols) {
  auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
  for (size_t d = 0; d < symbols.size(); ++d) {
    if (!symbols[d].empty()) shape->mutable_dim(static_cast<int>(d))->set_dim_param(symbols[d]);
  }
}

// x f32[batch, seq, 4] and attention_mask i64[batch, seq]:
//   hidden = MatMul((x + 1) * mask, W)  -> f32[batch, seq, 4]
//   pooled = ReduceSum((x + 1) * mask over seq) -> f32[batch, 4]
// Padded x is 0, which the + 1 makes count in the sum unless the mask (padded with 0) hides it.
std::string masked_model(bool with_mask = true, const std::string& pooled_batch = "batch") {
  testing::ModelBuilder m(17);
  name_dims(m.input("x", DType::F32, testing::DeclDims{-1, -1, 4}), {"batch", "seq"});
  std::vector<float> w(16);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  m.initializer("w", DType::F32, {4, 4}, testing::bytes_of(w));
  m.initializer("axis2", DType::I64, {1}, testing::bytes_of<int64_t>({2}));
  m.initializer("axis1", DType::I64, {1}, testing::bytes_of<int64_t>({1}));
  m.initializer("one", DType::F32, {}, testing::bytes_of<float>({1.f}));
  m.node("Add", {"x", "one"}, {"shifted"}, "shift");
  std::string masked = "shifted";
  if (with_mask) {
    name_dims(m.input("attention_mask", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
    testing::add_int_attr(m.node("Cast", {"attention_mask"}, {"maskf"}, "cast"), "to", 1);
    m.node("Unsqueeze", {"maskf", "axis2"}, {"mask3"}, "unsqueeze");
    m.node("Mul", {"shifted", "mask3"}, {"masked"}, "mul");
    masked = "masked";
  }
  m.node("MatMul", {masked, "w"}, {"hidden"}, "matmul");
  testing::add_int_attr(m.node("ReduceSum", {masked, "axis1"}, {"pooled"}, "pool"), "keepdims", 0);
  name_dims(m.output("hidden", DType::F32, testing::DeclDims{-1, -1, 4}), {"batch", "seq"});
  name_dims(m.output("pooled", DType::F32, testing::DeclDims{-1, 4}), {pooled_batch});
  return m.bytes();
}

std::map<std::string, Tensor> masked_inputs(int64_t batch, int64_t seq, uint32_t seed,
                                            bool with_mask = true) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor x(DType::F32, {batch, seq, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  if (!with_mask) return {{"x", x}};
  Tensor mask(DType::I64, {batch, seq});
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data<int64_t>()[i] = 1;
  return {{"x", x}, {"attention_mask", mask}};
}

SessionOptions with_buckets(const std::string& spec, size_t max_exact_plans = 8) {
  SessionOptions o;
  o.buckets = parse_shape_buckets(spec);
  o.max_exact_plans = max_exact_plans;
  return o;
}

void expect_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Agreement a = compare_outputs(got[i], want[i], 1e-5, 1e-6);
    EXPECT_TRUE(a.within_tolerance())
        << "output " << i << ": " << a.shape_error << " max abs " << a.max_abs;
  }
}

TEST(ShapeBuckets, ParsesSizesAndPaddingMarkers) {
  const ShapeBuckets b = parse_shape_buckets(" batch=8,1,32 ; seq~=512,128;len==7;");
  ASSERT_EQ(b.symbols.size(), 3u);
  EXPECT_EQ(b.symbols.at("batch").sizes, (std::vector<int64_t>{1, 8, 32}));
  EXPECT_EQ(b.symbols.at("batch").padding, ShapeBuckets::Padding::Auto);
  EXPECT_EQ(b.symbols.at("seq").sizes, (std::vector<int64_t>{128, 512}));
  EXPECT_EQ(b.symbols.at("seq").padding, ShapeBuckets::Padding::Always);
  EXPECT_EQ(b.symbols.at("len").padding, ShapeBuckets::Padding::Never);
  EXPECT_EQ(to_string(b), "batch=1,8,32;len==7;seq~=128,512");
  EXPECT_EQ(to_string(parse_shape_buckets(to_string(b))), to_string(b));
}

TEST(ShapeBuckets, ParserNamesWhatIsWrong) {
  expect_error([] { parse_shape_buckets(""); }, "no symbol declared");
  expect_error([] { parse_shape_buckets("seq"); }, "expected NAME=SIZES");
  expect_error([] { parse_shape_buckets("=1,2"); }, "expected a symbol name");
  expect_error([] { parse_shape_buckets("seq=1,,2"); }, "size '' is not a positive integer");
  expect_error([] { parse_shape_buckets("seq=12a"); }, "size '12a' is not a positive integer");
  expect_error([] { parse_shape_buckets("seq=0"); }, "sizes must be positive");
  expect_error([] { parse_shape_buckets("seq=8,8"); }, "size 8 is given twice");
  expect_error([] { parse_shape_buckets("seq=1;seq=2"); }, "'seq' is declared twice");
}

TEST(ShapeBuckets, UnknownSymbolIsNamedWithTheModelsSymbols) {
  expect_error([] { Session::from_bytes(masked_model(), with_buckets("sequence=8")); },
               "'sequence' is not a symbol of the model's inputs; the model's input symbols "
               "are: batch, seq");
}

TEST(ShapeBuckets, PaddedRunMatchesExactRunAndSlicesOutputs) {
  Session exact = Session::from_bytes(masked_model());
  Session bucketed = Session::from_bytes(masked_model(), with_buckets("batch=1,4;seq=8,16"));
  EXPECT_NE(bucketed.buckets_report().find("seq = 8,16: padded"), std::string::npos)
      << bucketed.buckets_report();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 5}, {3, 8}, {2, 11}, {4, 16}};
  for (const auto& [batch, seq] : shapes) {
    const auto in = masked_inputs(batch, seq, static_cast<uint32_t>(batch * 100 + seq));
    const auto want = exact.run_tensors(in);
    const auto got = bucketed.run_tensors(in);
    ASSERT_EQ(got[0].dims(), (Dims{batch, seq, 4}));
    ASSERT_EQ(got[1].dims(), (Dims{batch, 4}));
    expect_close(got, want);
  }
  const BucketStats s = bucketed.bucket_stats();
  EXPECT_EQ(s.padded_runs, 3);  // (1,5) (3,8) (2,11); (4,16) is a bucket
  EXPECT_EQ(s.bucket_runs, 1);
  EXPECT_EQ(s.exact_runs, 0);
  // Beyond the largest bucket: the exact shape.
  const auto in = masked_inputs(2, 20, 9);
  expect_close(bucketed.run_tensors(in), exact.run_tensors(in));
  EXPECT_EQ(bucketed.bucket_stats().exact_runs, 1);
}

TEST(ShapeBuckets, SymbolWithoutMaskIsNotPaddedUnlessDeclared) {
  // Without the mask, padding seq would change the ReduceSum over it.
  Session automatic = Session::from_bytes(masked_model(false), with_buckets("batch=4;seq=8"));
  EXPECT_NE(automatic.buckets_report().find("seq = 8: exact sizes only"), std::string::npos)
      << automatic.buckets_report();
  EXPECT_NE(automatic.buckets_report().find("batch = 4: padded"), std::string::npos);
  const auto in = masked_inputs(2, 5, 3, false);
  automatic.run_tensors(in);
  EXPECT_EQ(automatic.bucket_stats().exact_runs, 1);
  // Batch alone is padded: rows are independent.
  Session exact = Session::from_bytes(masked_model(false));
  const auto rows = masked_inputs(3, 8, 4, false);
  expect_close(automatic.run_tensors(rows), exact.run_tensors(rows));
  EXPECT_EQ(automatic.bucket_stats().padded_runs, 1);

  // Declared paddable, it is padded, and the sum over seq shows what that costs here.
  Session declared = Session::from_bytes(masked_model(false), with_buckets("seq~=8"));
  const auto padded = declared.run_tensors(in);
  EXPECT_EQ(declared.bucket_stats().padded_runs, 1);
  EXPECT_FALSE(compare_outputs(padded[1], exact.run_tensors(in)[1], 1e-3, 1e-3).within_tolerance());
  Session never = Session::from_bytes(masked_model(), with_buckets("seq==8"));
  never.run_tensors(masked_inputs(2, 5, 3));
  EXPECT_EQ(never.bucket_stats().exact_runs, 1);
}

TEST(ShapeBuckets, OutputAxisDerivedFromSymbolBlocksPadding) {
  // y = Reshape(x, [-1, 4]): f32[batch*seq, 4] cannot be sliced back per symbol.
  testing::ModelBuilder m(17);
  name_dims(m.input("x", DType::F32, testing::DeclDims{-1, -1, 4}), {"batch", "seq"});
  name_dims(m.input("attention_mask", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
  m.initializer("shape", DType::I64, {2}, testing::bytes_of<int64_t>({-1, 4}));
  m.node("Reshape", {"x", "shape"}, {"flat"}, "reshape");
  m.node("Identity", {"attention_mask"}, {"mask_out"}, "id");
  m.output("flat", DType::F32, std::nullopt);
  name_dims(m.output("mask_out", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
  Session s = Session::from_bytes(m.bytes(), with_buckets("seq=8"));
  EXPECT_NE(s.buckets_report().find("derived from seq"), std::string::npos) << s.buckets_report();
  s.run_tensors(masked_inputs(1, 5, 1));
  EXPECT_EQ(s.bucket_stats().exact_runs, 1);
}

TEST(ShapeBuckets, OutputDimsNamedByTheExporterAreTakenFromShapeInference) {
  // Exporters name output dims on their own ("ReduceSumoutput_dim_0"); inference knows it is
  // batch, so batch stays paddable.
  Session s =
      Session::from_bytes(masked_model(false, "ReduceSumoutput_dim_0"), with_buckets("batch=4"));
  EXPECT_NE(s.buckets_report().find("batch = 4: padded"), std::string::npos) << s.buckets_report();
  Session exact = Session::from_bytes(masked_model(false));
  const auto in = masked_inputs(3, 5, 2, false);
  expect_close(s.run_tensors(in), exact.run_tensors(in));
  EXPECT_EQ(s.bucket_stats().padded_runs, 1);
}

TEST(ShapeBuckets, ExactPlansStayWithinTheLruBoundAndBucketPlansArePinned) {
  Session s = Session::from_bytes(masked_model(), with_buckets("batch=1;seq=4,8", 2));
  s.run_tensors(masked_inputs(1, 4, 1));
  s.run_tensors(masked_inputs(1, 7, 2));  // padded to 8
  for (int64_t seq = 9; seq < 15; ++seq) s.run_tensors(masked_inputs(1, seq, 3));
  MemoryStats m = s.memory_stats();
  EXPECT_EQ(m.pinned_plans, 2);
  EXPECT_EQ(m.kept_plans, 4);  // 2 pinned + at most 2 exact
  EXPECT_EQ(m.plans, 8);
  s.run_tensors(masked_inputs(1, 3, 4));  // padded to 4: the pinned plan, nothing new
  EXPECT_EQ(s.memory_stats().plans, 8);

  // Without buckets the bound holds too.
  SessionOptions o;
  o.max_exact_plans = 3;
  Session plain = Session::from_bytes(masked_model(), o);
  for (int64_t seq = 1; seq <= 6; ++seq) plain.run_tensors(masked_inputs(1, seq, 5));
  EXPECT_EQ(plain.memory_stats().kept_plans, 3);
  EXPECT_EQ(plain.memory_stats().pinned_plans, 0);
}

TEST(ShapeBuckets, KernelShapeCacheFollowsThePolicy) {
  cpu::ShapePlanCache<int, int> cache;
  int made = 0;
  const auto make = [&] {
    ++made;
    return std::make_shared<const int>(made);
  };
  {
    const cpu::ShapePlanScope pinned({2, true});
    cache.get(100, make);
  }
  {
    const cpu::ShapePlanScope bounded({2, false});
    for (int k = 1; k <= 5; ++k) cache.get(k, make);
    EXPECT_EQ(cache.recent_size(), 2u);
    EXPECT_EQ(cache.pinned_size(), 1u);
    EXPECT_EQ(*cache.get(100, make), 1);  // pinned: not made again
    cache.get(5, make);                   // most recent: kept
    EXPECT_EQ(made, 6);
    cache.get(1, make);  // evicted: made again
    EXPECT_EQ(made, 7);
  }
}

TEST(ShapeBuckets, WarmRunsEveryBucketAndNeedsEverySymbolSized) {
  Session s = Session::from_bytes(masked_model(), with_buckets("seq=4,8"));
  expect_error([&] { s.warm_buckets(); }, "input symbol 'batch' has no bucket sizes");
  const auto warmed = s.warm_buckets({{"batch", 2}});
  ASSERT_EQ(warmed.size(), 2u);
  EXPECT_EQ(warmed[1].at("seq"), 8);
  EXPECT_EQ(s.memory_stats().plans, 2);
  // batch has no buckets, so plans of runs are not pinned; the warmed ones were found though.
  s.run_tensors(masked_inputs(2, 6, 1));
  EXPECT_EQ(s.memory_stats().plans, 2);
}

TEST(ShapeBuckets, ExportedPlansImportIntoAnotherSessionWithSameResults) {
  const SessionOptions o = with_buckets("batch=1,2;seq=8");
  Session a = Session::from_bytes(masked_model(), o);
  a.warm_buckets();
  const std::vector<BucketPlan> plans = a.bucket_plans();
  ASSERT_EQ(plans.size(), 2u);
  for (const auto& p : plans) {
    EXPECT_GT(p.arena_bytes, 0u);
    EXPECT_FALSE(p.tensors.empty());
    EXPECT_EQ(p.sizes.at("seq"), 8);
  }
  Session b = Session::from_bytes(masked_model(), o);
  b.import_bucket_plans(plans);
  EXPECT_EQ(b.memory_stats().pinned_plans, 2);
  const auto in = masked_inputs(2, 6, 11);
  const auto got = b.run_tensors(in);
  const auto want = a.run_tensors(in);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].dims(), want[i].dims());
    for (int64_t k = 0; k < got[i].numel(); ++k) {
      ASSERT_EQ(got[i].data<float>()[k], want[i].data<float>()[k]);
    }
  }
  EXPECT_EQ(b.memory_stats().plans, 2);  // ran on the imported plan: nothing recorded

  std::vector<BucketPlan> bad = plans;
  bad[0].tensors[0].node = 1000;
  Session c = Session::from_bytes(masked_model(), o);
  expect_error([&] { c.import_bucket_plans(bad); }, "is not in this graph");
  bad = plans;
  bad[0].tensors[0].offset = bad[0].arena_bytes;
  expect_error([&] { c.import_bucket_plans(bad); }, "does not fit the arena");
  bad = plans;
  bad[0].sizes.erase("seq");
  expect_error([&] { c.import_bucket_plans(bad); }, "no size for symbol 'seq'");
}

TEST(ShapeBuckets, EngineFileCarriesTheBucketsAndTheirPlans) {
  SessionOptions o = with_buckets("batch=1,2;seq=8");
  o.warm_buckets = true;
  const std::string onnx = ::testing::TempDir() + "kpt_buckets_model.onnx";
  const std::string kpt = ::testing::TempDir() + "kpt_buckets_model.kpt";
  {
    std::ofstream f(onnx, std::ios::binary);
    const std::string bytes = masked_model();
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  Session made = Session::open(onnx, o);
  ASSERT_EQ(made.bucket_plans().size(), 2u);
  made.save_engine(kpt);

  // Loaded without declaring buckets: the engine's apply, with its plans, and nothing warms.
  Session loaded = Session::open(kpt);
  EXPECT_EQ(loaded.memory_stats().pinned_plans, 2);
  const std::vector<BucketPlan> want = made.bucket_plans(), got_plans = loaded.bucket_plans();
  ASSERT_EQ(got_plans.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got_plans[i].sizes, want[i].sizes);
    EXPECT_EQ(got_plans[i].arena_bytes, want[i].arena_bytes);
    EXPECT_EQ(got_plans[i].tensors.size(), want[i].tensors.size());
  }
  const auto in = masked_inputs(2, 5, 21);
  const auto got = loaded.run_tensors(in);
  expect_close(got, Session::open(onnx).run_tensors(in));
  EXPECT_EQ(loaded.bucket_stats().padded_runs, 1);
  EXPECT_EQ(loaded.memory_stats().plans, 2);  // the padded run used the stored plan
  std::remove(onnx.c_str());
  std::remove(kpt.c_str());
}

TEST(ShapeBuckets, CopyBlockPadsAndSlices) {
  // 2x3 into the corner of 3x5, then back.
  std::vector<int32_t> src = {1, 2, 3, 4, 5, 6}, big(15, 0), back(6, 0);
  runtime::copy_block(src.data(), {2, 3}, big.data(), {3, 5}, {2, 3}, sizeof(int32_t));
  EXPECT_EQ(big, (std::vector<int32_t>{1, 2, 3, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0}));
  runtime::copy_block(big.data(), {3, 5}, back.data(), {2, 3}, {2, 3}, sizeof(int32_t));
  EXPECT_EQ(back, src);
  // Whole trailing axes copy as one run: 2x2x2 into 3x2x2.
  std::vector<int32_t> cube = {1, 2, 3, 4, 5, 6, 7, 8}, tall(12, 0);
  runtime::copy_block(cube.data(), {2, 2, 2}, tall.data(), {3, 2, 2}, {2, 2, 2}, sizeof(int32_t));
  EXPECT_EQ(tall, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace kpt
