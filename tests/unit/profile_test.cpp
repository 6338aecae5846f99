// Per-node profiles: a profiled run computes what a plain run does and times every node; the
// summary by op and kernel adds the times up, heaviest first.
#include <gtest/gtest.h>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

TEST(Profile, ProfiledRunTimesEveryNodeAndMatchesAPlainRun) {
  const Session s = Session::from_bytes(testing::add_model_bytes());
  std::map<std::string, Value> feeds;
  for (const auto& in : s.inputs()) {
    Tensor t(DType::F32, {2, 3});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.25f * static_cast<float>(i + 1);
    feeds[in.name] = Value::of(t);
  }
  std::vector<Session::NodeTime> times;
  const auto profiled = s.run_profiled(feeds, times);
  const auto plain = s.run(feeds);
  ASSERT_EQ(profiled.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(profiled[i].tensor.dims(), plain[i].tensor.dims());
    for (int64_t k = 0; k < plain[i].tensor.numel(); ++k)
      EXPECT_EQ(profiled[i].tensor.data<float>()[k], plain[i].tensor.data<float>()[k]);
  }
  EXPECT_EQ(times.size(), s.graph().nodes.size());
  for (const auto& t : times) EXPECT_GE(t.ms, 0.0);
}

TEST(Profile, ByOpSumsPerOpAndKernelHeaviestFirst) {
  const std::vector<Session::NodeTime> times{{"a", "MatMul", "gemm", 1.0},
                                             {"b", "Add", "binary", 0.5},
                                             {"c", "MatMul", "gemm", 2.0},
                                             {"d", "MatMul", "reference", 0.25},
                                             {"e", "Add", "binary", 0.75}};
  const auto rows = Session::by_op(times);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].op, "MatMul");
  EXPECT_EQ(rows[0].kernel, "gemm");
  EXPECT_DOUBLE_EQ(rows[0].ms, 3.0);
  EXPECT_EQ(rows[0].nodes, 2);
  EXPECT_EQ(rows[1].op, "Add");
  EXPECT_DOUBLE_EQ(rows[1].ms, 1.25);
  EXPECT_EQ(rows[1].nodes, 2);
  EXPECT_EQ(rows[2].kernel, "reference");
  EXPECT_EQ(rows[2].nodes, 1);
}

}  // namespace
}  // namespace kpt
