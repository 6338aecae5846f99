// Control-family logic that the conformance cases do not reach: piece helpers, split corner
// cases and position checks.
#include <gtest/gtest.h>

#include "ops/control/tensor_pieces.hpp"
#include "ops/registry.hpp"

namespace kpt {
namespace {

Tensor iota(Dims dims) {
  Tensor t(DType::I64, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = i;
  return t;
}

std::vector<Value> run_node(const ir::Node& node, const std::vector<Value>& inputs) {
  const auto* entry = ops::Registry::instance().find(node.domain, node.op_type, node.opset);
  EXPECT_NE(entry, nullptr);
  std::vector<const Value*> in;
  for (const auto& v : inputs) in.push_back(&v);
  std::vector<Value> out(node.outputs.size());
  ops::KernelContext ctx(node, in, out, nullptr);
  entry->kernel(ctx);
  return out;
}

ir::Node make_node(const std::string& op, int opset, size_t n_in, size_t n_out) {
  ir::Node n;
  n.op_type = op;
  n.opset = opset;
  for (size_t i = 0; i < n_in; ++i) n.inputs.push_back("i" + std::to_string(i));
  for (size_t i = 0; i < n_out; ++i) n.outputs.push_back("o" + std::to_string(i));
  return n;
}

TEST(ControlPieces, SliceConcatStackRoundTrip) {
  const Tensor t = iota({2, 3, 2});
  const Tensor a = ops::control::slice_axis(t, 1, 0, 1);
  const Tensor b = ops::control::slice_axis(t, 1, 1, 2);
  const Tensor joined = ops::control::concat_axis({a, b}, 1);
  ASSERT_EQ(joined.dims(), t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(joined.get_i64(i), t.get_i64(i));
  const Tensor row = ops::control::slice_axis(t, 1, 2, 1, false);
  ASSERT_EQ(row.dims(), (Dims{2, 2}));
  EXPECT_EQ(row.get_i64(0), 4);
  EXPECT_EQ(row.get_i64(2), 10);
  const Tensor stacked = ops::control::stack_axis({row, row}, 2);
  ASSERT_EQ(stacked.dims(), (Dims{2, 2, 2}));
  EXPECT_EQ(stacked.get_i64(1), 4);
  EXPECT_EQ(stacked.get_i64(2), 5);
}

TEST(ControlOps, SplitToSequenceScalarLeavesShortLastPiece) {
  ir::Node n = make_node("SplitToSequence", 11, 2, 1);
  const auto out =
      run_node(n, {Value::of(iota({5})), Value::of(Tensor::scalar<int64_t>(DType::I64, 2))});
  ASSERT_TRUE(out[0].is_sequence());
  ASSERT_EQ(out[0].sequence.size(), 3u);
  EXPECT_EQ(out[0].sequence[2].dims(), (Dims{1}));
  EXPECT_EQ(out[0].sequence[2].get_i64(0), 4);
}

TEST(ControlOps, StringSplitWhitespaceMaxsplitKeepsRest) {
  ir::Node n = make_node("StringSplit", 20, 1, 2);
  n.attrs["maxsplit"] = ir::Attribute::of_int("maxsplit", 1);
  Tensor x(DType::String, {1});
  x.strings()[0] = "  a  b c  ";
  const auto out = run_node(n, {Value::of(x)});
  ASSERT_EQ(out[0].tensor.dims(), (Dims{1, 2}));
  EXPECT_EQ(out[0].tensor.strings()[0], "a");
  EXPECT_EQ(out[0].tensor.strings()[1], "b c");
  EXPECT_EQ(out[1].tensor.get_i64(0), 2);
}

TEST(ControlOps, SequenceAtRejectsOutOfRangePosition) {
  ir::Node n = make_node("SequenceAt", 11, 2, 1);
  const Value seq = Value::of_sequence({iota({1})}, DType::I64);
  EXPECT_THROW(run_node(n, {seq, Value::of(Tensor::scalar<int64_t>(DType::I64, 1))}), Error);
  const auto out = run_node(n, {seq, Value::of(Tensor::scalar<int64_t>(DType::I64, -1))});
  EXPECT_EQ(out[0].tensor.dims(), (Dims{1}));
}

}  // namespace
}  // namespace kpt
