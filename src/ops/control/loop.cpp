// Loop: runs the body while the trip count and the condition allow, threading loop-carried
// values through and stacking per-iteration scan outputs along a new axis 0.
#include <limits>

#include "ops/control/subgraph_util.hpp"
#include "ops/control/tensor_pieces.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

bool scalar_true(const KernelContext& ctx, const Value& v, const std::string& what) {
  if (!v.is_tensor() || v.tensor.numel() != 1) ctx.fail(what + " must be a tensor of one element");
  return v.tensor.get_f64(0) != 0;
}

void loop_kernel(KernelContext& ctx) {
  const ir::Graph* body = ctx.node().attr_graph("body");
  if (!body) ctx.fail("missing graph attribute 'body'");
  int64_t max_trip = std::numeric_limits<int64_t>::max();
  if (ctx.has_input(0)) {
    const Tensor& m = ctx.input(0);
    ctx.check(m.numel() == 1,
              [&] { return "trip count M must hold one element, got " + m.describe(); });
    max_trip = m.get_i64(0);
  }
  bool cond = true;
  if (ctx.has_input(1)) cond = scalar_true(ctx, ctx.value(1), "condition input");
  if (!ctx.has_input(0) && !ctx.has_input(1))
    ctx.unsupported("a loop with neither trip count nor condition never ends");

  const size_t n_carried = ctx.num_inputs() > 2 ? ctx.num_inputs() - 2 : 0;
  std::vector<Value> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    carried.push_back(ctx.has_input(2 + i) ? ctx.value(2 + i) : Value::none());
  }
  ctx.check(body->inputs.size() == 2 + n_carried,
            "body takes " + std::to_string(body->inputs.size()) + " inputs, expected " +
                std::to_string(2 + n_carried) + " (iteration, condition, loop-carried values)");
  ctx.check(body->outputs.size() >= 1 + n_carried,
            "body has " + std::to_string(body->outputs.size()) + " outputs, expected at least " +
                std::to_string(1 + n_carried));
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  std::vector<std::vector<Tensor>> scans(n_scan);

  for (int64_t i = 0; i < max_trip && cond; ++i) {
    std::vector<Value> in;
    in.reserve(2 + n_carried);
    in.push_back(Value::of(Tensor::scalar<int64_t>(DType::I64, i)));
    in.push_back(Value::of(Tensor::scalar<bool>(DType::Bool, cond)));
    for (auto& v : carried) in.push_back(std::move(v));
    std::vector<Value> out = ctx.run_subgraph(*body, in);
    // Without a condition input the spec ignores the body's condition output.
    if (ctx.has_input(1)) cond = scalar_true(ctx, out[0], "body condition output");
    for (size_t k = 0; k < n_carried; ++k) carried[k] = std::move(out[1 + k]);
    for (size_t k = 0; k < n_scan; ++k) {
      const Value& s = out[1 + n_carried + k];
      if (!s.is_tensor()) ctx.fail("scan output " + std::to_string(k) + " must be a tensor");
      scans[k].push_back(s.tensor);
    }
  }
  for (size_t k = 0; k < n_carried; ++k) ctx.set_output_value(k, std::move(carried[k]));
  for (size_t k = 0; k < n_scan; ++k) {
    if (!ctx.wants_output(n_carried + k)) continue;
    Tensor t = scans[k].empty() ? control::empty_stacked(body->outputs[1 + n_carried + k])
                                : control::stack_axis(scans[k], 0);
    ctx.set_output(n_carried + k, std::move(t));
  }
}

}  // namespace

KPT_REGISTER_OP("", "Loop", 1, loop_kernel);

}  // namespace kpt::ops
