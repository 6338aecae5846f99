// The parts of kpt bench that decide what is reported: percentiles, output agreement, valid
// random inputs, the SVG chart and the markdown table.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>

#include "core/cast.hpp"
#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "runtime/random_inputs.hpp"
#include "tests/testing/model_builder.hpp"
#include "tools/kpt/bench_mixed.hpp"
#include "tools/kpt/bench_report.hpp"
#include "tools/kpt/bench_stats.hpp"
#include "tools/kpt/svg_chart.hpp"

namespace kpt {
namespace {

using cli::compare_outputs;
using cli::percentile;

Tensor f32(const Dims& dims, const std::vector<float>& values) {
  Tensor t(DType::F32, dims);
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return t;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(BenchStats, PercentileInterpolatesBetweenRanksLikeNumpy) {
  const std::vector<double> v = {4, 1, 3, 2};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile(v, 101), Error);
}

TEST(BenchStats, SummaryHoldsPercentilesMeanAndRange) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  const auto s = cli::summarize_latencies(v);
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_DOUBLE_EQ(s.p90, 90.1);
  EXPECT_DOUBLE_EQ(s.p99, 99.01);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
}

TEST(BenchStats, IdenticalOutputsAgreeExactly) {
  const Tensor a = f32({2, 2}, {1, -2, 3, 0});
  const auto ag = compare_outputs(a, a, 1e-3, 1e-4);
  EXPECT_EQ(ag.max_abs, 0);
  EXPECT_EQ(ag.max_rel, 0);
  EXPECT_DOUBLE_EQ(ag.cosine, 1);
  EXPECT_TRUE(ag.within_tolerance());
}

TEST(BenchStats, ErrorsBeyondToleranceAreCountedWithMaxAbsAndRel) {
  const Tensor ref = f32({4}, {1, 2, 100, 0});
  const Tensor ours = f32({4}, {1.0005f, 2, 101, 0.00005f});
  const auto ag = compare_outputs(ours, ref, 1e-3, 1e-4);
  // 1.0005 is within 1e-4 + 1e-3 * 1; 101 is not within 1e-4 + 0.1; 5e-5 is within atol.
  EXPECT_EQ(ag.mismatches, 1);
  EXPECT_FALSE(ag.within_tolerance());
  EXPECT_NEAR(ag.max_abs, 1.0, 1e-6);
  EXPECT_NEAR(ag.max_rel, 0.01, 1e-6);  // the zero reference is left out of the relative error
  EXPECT_GT(ag.cosine, 0.9999);
}

TEST(BenchStats, CosineSeesDirectionNotScale) {
  const Tensor x = f32({2}, {1, 0}), y = f32({2}, {0, 1}), x2 = f32({2}, {2, 0});
  EXPECT_NEAR(compare_outputs(x, y, 1e-3, 1e-4).cosine, 0, 1e-12);
  const auto scaled = compare_outputs(x2, x, 1e-3, 1e-4);
  EXPECT_NEAR(scaled.cosine, 1, 1e-12);
  EXPECT_FALSE(scaled.within_tolerance());
  EXPECT_DOUBLE_EQ(compare_outputs(f32({2}, {0, 0}), f32({2}, {0, 0}), 0, 0).cosine, 1);
  EXPECT_DOUBLE_EQ(compare_outputs(f32({2}, {0, 0}), x, 1e-3, 1e-4).cosine, 0);
}

TEST(BenchStats, NanAgreesOnlyWithNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(compare_outputs(f32({2}, {nan, 1}), f32({2}, {nan, 1}), 0, 0).within_tolerance());
  EXPECT_EQ(compare_outputs(f32({2}, {nan, 1}), f32({2}, {0, 1}), 1, 1).mismatches, 1);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(compare_outputs(f32({1}, {inf}), f32({1}, {inf}), 0, 0).within_tolerance());
}

TEST(BenchStats, ShapeMismatchIsReportedNotCompared) {
  const auto ag = compare_outputs(f32({2, 1}, {1, 2}), f32({1, 2}, {1, 2}), 1, 1);
  EXPECT_FALSE(ag.within_tolerance());
  EXPECT_NE(ag.shape_error.find("[2,1]"), std::string::npos) << ag.shape_error;
}

TEST(BenchStats, IntegerOutputsCompareExactlyWithZeroTolerance) {
  const Tensor a = cast_tensor(f32({3}, {1, 2, 3}), DType::I64);
  const Tensor b = cast_tensor(f32({3}, {1, 2, 4}), DType::I64);
  EXPECT_TRUE(compare_outputs(a, a, 0, 0).within_tolerance());
  EXPECT_EQ(compare_outputs(a, b, 0, 0).mismatches, 1);
}

IoInfo io(const std::string& name, DType dtype, Dims dims, std::vector<std::string> symbols) {
  IoInfo i;
  i.name = name;
  i.dtype = dtype;
  i.has_shape = true;
  i.dims = std::move(dims);
  i.symbols = std::move(symbols);
  return i;
}

TEST(InputResolution, DimsOfOneInputFixTheSymbolsOfTheOthers) {
  const std::vector<IoInfo> inputs = {
      io("input_ids", DType::I64, {-1, -1}, {"batch", "seq"}),
      io("attention_mask", DType::I64, {-1, -1}, {"batch", "seq"}),
      io("pixel", DType::F32, {-1, 3}, {"batch", ""}),
  };
  const auto dims = runtime::resolve_input_dims(inputs, {{"input_ids", {8, 128}}}, {});
  EXPECT_EQ(dims.at("attention_mask"), (Dims{8, 128}));
  EXPECT_EQ(dims.at("pixel"), (Dims{8, 3}));
  // A file's dims fix symbols just the same.
  const auto from_file = runtime::resolve_input_dims(inputs, {}, {{"attention_mask", {2, 7}}});
  EXPECT_EQ(from_file.at("input_ids"), (Dims{2, 7}));
}

TEST(InputResolution, ErrorsNameTheInputAndItsDeclaredShape) {
  const std::vector<IoInfo> inputs = {
      io("input_ids", DType::I64, {-1, -1}, {"batch", "seq"}),
      io("past", DType::F32, {-1, 4, -1}, {"batch", "", "past_seq"}),
  };
  std::string e = error_of([&] {
    runtime::resolve_input_dims(inputs, {{"input_ids", {1, 8}}}, {});
  });
  EXPECT_NE(e.find("'past'"), std::string::npos) << e;
  EXPECT_NE(e.find("[batch,4,past_seq]"), std::string::npos) << e;
  EXPECT_NE(e.find("--input past=DIMS"), std::string::npos) << e;

  e = error_of([&] { runtime::resolve_input_dims(inputs, {{"input_ids", {1, 8, 2}}}, {}); });
  EXPECT_NE(e.find("rank 2"), std::string::npos) << e;
  e = error_of([&] { runtime::resolve_input_dims(inputs, {{"past", {1, 5, 3}}}, {}); });
  EXPECT_NE(e.find("dim 1 must be 4"), std::string::npos) << e;
  e = error_of([&] { runtime::resolve_input_dims(inputs, {{"ids", {1, 8}}}, {}); });
  EXPECT_NE(e.find("input_ids, past"), std::string::npos) << e;
  e = error_of([&] {
    runtime::resolve_input_dims(inputs, {{"input_ids", {1, 8}}, {"past", {2, 4, 3}}}, {});
  });
  EXPECT_NE(e.find("'batch'"), std::string::npos) << e;
}

void name_dims(onnx::ValueInfoProto& v, const std::vector<std::string>& symbols) {
  auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
  for (int i = 0; i < shape->dim_size(); ++i) {
    if (!symbols[static_cast<size_t>(i)].empty()) {
      shape->mutable_dim(i)->set_dim_param(symbols[static_cast<size_t>(i)]);
    }
  }
}

// input_ids -> Cast(int32) -> Gather(word table, 100 rows); token_type_ids -> Reshape ->
// Gather(type table, 2 rows); attention_mask -> Cast(f32); plain_ints -> Cast(f32): like BERT's
// embeddings, small enough to run.
std::string embedding_model() {
  testing::ModelBuilder b(17);
  name_dims(b.input("input_ids", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
  name_dims(b.input("token_type_ids", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
  name_dims(b.input("attention_mask", DType::I64, testing::DeclDims{-1, -1}), {"batch", "seq"});
  name_dims(b.input("plain_ints", DType::I64, testing::DeclDims{-1}), {"batch"});
  b.initializer("words", DType::F32, {100, 4}, testing::bytes_of(std::vector<float>(400, 0.5f)));
  b.initializer("types", DType::F32, {2, 4}, testing::bytes_of(std::vector<float>(8, 0.25f)));
  b.initializer("same_shape", DType::I64, {2}, testing::bytes_of(std::vector<int64_t>{0, -1}));
  testing::add_int_attr(b.node("Cast", {"input_ids"}, {"ids32"}), "to",
                        static_cast<int64_t>(DType::I32));
  b.node("Gather", {"words", "ids32"}, {"w"});
  b.node("Reshape", {"token_type_ids", "same_shape"}, {"tt"});
  b.node("Gather", {"types", "tt"}, {"t"});
  b.node("Add", {"w", "t"}, {"emb"});
  testing::add_int_attr(b.node("Cast", {"attention_mask"}, {"mask_f"}), "to",
                        static_cast<int64_t>(DType::F32));
  testing::add_int_attr(b.node("Cast", {"plain_ints"}, {"plain_f"}), "to",
                        static_cast<int64_t>(DType::F32));
  b.output("emb", DType::F32, std::nullopt);
  b.output("mask_f", DType::F32, std::nullopt);
  b.output("plain_f", DType::F32, std::nullopt);
  return b.bytes();
}

TEST(InputResolution, IndexInputsStayWithinTheTableTheyIndex) {
  Session s = Session::from_bytes(embedding_model());
  EXPECT_EQ(runtime::index_limit(s.graph(), "input_ids"), 100);
  EXPECT_EQ(runtime::index_limit(s.graph(), "token_type_ids"), 2);
  EXPECT_EQ(runtime::index_limit(s.graph(), "plain_ints"), std::nullopt);

  const auto inputs =
      runtime::make_valid_inputs(s.graph(), s.inputs(), {{"input_ids", {3, 50}}}, {});
  ASSERT_EQ(inputs.size(), 4u);
  const Tensor ids = cast_tensor(inputs.at("input_ids"), DType::F64);
  const Tensor types = cast_tensor(inputs.at("token_type_ids"), DType::F64);
  const Tensor mask = cast_tensor(inputs.at("attention_mask"), DType::F64);
  EXPECT_EQ(types.dims(), (Dims{3, 50}));
  EXPECT_EQ(inputs.at("plain_ints").dims(), (Dims{3}));
  double ids_max = 0, types_max = 0;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    EXPECT_GE(ids.data<double>()[i], 0);
    ids_max = std::max(ids_max, ids.data<double>()[i]);
    types_max = std::max(types_max, types.data<double>()[i]);
    EXPECT_EQ(mask.data<double>()[i], 1.0);
  }
  EXPECT_LT(ids_max, 100);
  EXPECT_GT(ids_max, 10);  // the range is the table's, not the default [0, 10)
  EXPECT_EQ(types_max, 1);

  std::map<std::string, Value> feeds;
  for (const auto& [name, t] : inputs) feeds[name] = Value::of(t);
  EXPECT_EQ(s.run(feeds)[0].tensor.dims(), (Dims{3, 50, 4}));
}

TEST(InputResolution, GivenTensorsAreKeptAsTheyAre) {
  Session s = Session::from_bytes(embedding_model());
  const Tensor ids = cast_tensor(f32({1, 2}, {7, 9}), DType::I64);
  const auto inputs = runtime::make_valid_inputs(s.graph(), s.inputs(), {}, {{"input_ids", ids}});
  EXPECT_EQ(inputs.at("input_ids").data<int64_t>()[1], 9);
  EXPECT_EQ(inputs.at("token_type_ids").dims(), (Dims{1, 2}));
}

TEST(SvgChart, OneBarPerValueScaledAndEscaped) {
  cli::BarChart c;
  c.title = "p50 <latency> & more";
  c.series = {"kpt", "ONNX Runtime"};
  c.groups = {{"a", {10, 20}, "2.00x faster"},
              {"b", {5, std::numeric_limits<double>::quiet_NaN()}, ""}};
  const std::string svg = cli::render_svg(c);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "<rect class=\"bar "), 3);  // the NaN draws no bar
  EXPECT_EQ(count(svg, "<g class=\"group\">"), 2);
  EXPECT_NE(svg.find("p50 &lt;latency&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(svg.find("<latency>"), std::string::npos);
  EXPECT_NE(svg.find("2.00x faster"), std::string::npos);
  // One axis: 20 is the full bar (440), 10 half of it, 5 a quarter.
  EXPECT_NE(svg.find("width=\"440\" height=\"14\" fill=\"#E69F00\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("width=\"220\" height=\"14\" fill=\"#0072B2\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("width=\"110\""), std::string::npos) << svg;
  // Per group: b's only bar spans the full width too.
  c.scale_per_group = true;
  EXPECT_EQ(count(cli::render_svg(c), "width=\"440\" height=\"14\""), 2);
  EXPECT_EQ(count(svg, "<rect class=\"legend\""), 2);
}

nlohmann::json result(const std::string& model, double p50, std::optional<double> ort_p50) {
  nlohmann::json r = {{"model", model},
                      {"precision", "bf16"},
                      {"threads", 2},
                      {"inputs", {{"input_ids", {{"dtype", "i64"}, {"shape", {8, 128}}}}}},
                      {"latency_ms", {{"p50", p50}, {"p90", p50}, {"p99", p50}}}};
  if (ort_p50) {
    r["ort"] = {{"latency_ms", {{"p50", *ort_p50}}}};
    r["speedup_p50"] = *ort_p50 / p50;
    r["agreement"] = {{"logits", {{"max_abs", 0.01}, {"max_rel", 0.1}, {"cosine", 0.9995}}}};
    r["agreement_ok"] = true;
  }
  return r;
}

TEST(BenchReport, LabelsChartAndTableComeFromTheResults) {
  const auto a = result("build/bench-models/bert_base/model.onnx", 10, 20);
  const auto b = result("/x/llama_1b.onnx", 40, std::nullopt);
  EXPECT_EQ(cli::result_label(a), "bert_base 8x128 bf16");
  EXPECT_EQ(cli::result_label(b), "llama_1b 8x128 bf16");

  const auto chart = cli::latency_chart({a, b});
  ASSERT_EQ(chart.groups.size(), 2u);
  EXPECT_EQ(chart.groups[0].note, "2.00x faster");
  EXPECT_TRUE(std::isnan(chart.groups[1].values[1]));
  EXPECT_TRUE(chart.scale_per_group);

  const std::string md = cli::markdown_table({a, b});
  EXPECT_EQ(count(md, "\n"), 4);  // header, rule, two rows
  EXPECT_NE(md.find("| bert_base | input_ids=8x128 | 2 | bf16 | 10.000 | 20.000 | 2.00x | ok"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| llama_1b | input_ids=8x128 | 2 | bf16 | 40.000 | — | — | not compared |"),
            std::string::npos)
      << md;
}

TEST(BenchMixed, RangeParsesAndLengthsRepeatForASeed) {
  const cli::MixedRange r = cli::parse_mixed_range("seq=16..256");
  EXPECT_EQ(r.symbol, "seq");
  EXPECT_EQ(r.lo, 16);
  EXPECT_EQ(r.hi, 256);
  for (const char* bad : {"seq", "seq=16", "seq=..8", "seq=9..8", "seq=0..8", "=1..2"}) {
    EXPECT_THROW(cli::parse_mixed_range(bad), Error) << bad;
  }
  const auto a = cli::mixed_lengths(r, 50, 1), b = cli::mixed_lengths(r, 50, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, cli::mixed_lengths(r, 50, 2));
  for (int64_t n : a) {
    EXPECT_GE(n, 16);
    EXPECT_LE(n, 256);
  }
}

}  // namespace
}  // namespace kpt
