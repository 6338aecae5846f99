// SequenceMap: runs the body once per element of the input sequence; additional inputs that
// are sequences contribute their element at the same position, tensors are passed whole.
#include "ops/control/subgraph_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

void sequence_map(KernelContext& ctx) {
  const ir::Graph* body = ctx.node().attr_graph("body");
  if (!body) ctx.fail("missing graph attribute 'body'");
  const Value& seq = ctx.value(0);
  if (!seq.is_sequence()) ctx.fail("input 0 must be a sequence");
  const size_t n = seq.sequence.size();
  for (size_t j = 1; j < ctx.num_inputs(); ++j) {
    const Value& v = ctx.value(j);
    if (v.is_sequence())
      ctx.check(v.sequence.size() == n, "input sequence " + std::to_string(j) + " has " +
                                            std::to_string(v.sequence.size()) +
                                            " elements, expected " + std::to_string(n));
    else if (!v.is_tensor())
      ctx.fail("input " + std::to_string(j) + " must be a sequence or a tensor");
  }
  ctx.check(body->inputs.size() == ctx.num_inputs(),
            "body takes " + std::to_string(body->inputs.size()) + " inputs, the node passes " +
                std::to_string(ctx.num_inputs()));
  const size_t n_out = ctx.node().outputs.size();
  ctx.check(body->outputs.size() >= n_out, "body has fewer outputs than the node");
  std::vector<std::vector<Tensor>> outs(n_out);
  for (size_t i = 0; i < n; ++i) {
    std::vector<Value> in{Value::of(seq.sequence[i])};
    for (size_t j = 1; j < ctx.num_inputs(); ++j) {
      const Value& v = ctx.value(j);
      in.push_back(v.is_sequence() ? Value::of(v.sequence[i]) : v);
    }
    std::vector<Value> r = ctx.run_subgraph(*body, in);
    for (size_t k = 0; k < n_out; ++k) {
      if (!r[k].is_tensor()) ctx.fail("body output " + std::to_string(k) + " must be a tensor");
      outs[k].push_back(r[k].tensor);
    }
  }
  for (size_t k = 0; k < n_out; ++k) {
    DType dt = outs[k].empty() ? body->outputs[k].type.elem : outs[k][0].dtype();
    ctx.set_output_value(k, Value::of_sequence(std::move(outs[k]), dt));
  }
}

}  // namespace

KPT_REGISTER_OP("", "SequenceMap", 1, sequence_map);

}  // namespace kpt::ops
