// Inference for control flow: If and Loop take their output types from their bodies, which
// shape inference visits before the node itself.
#include "analysis/infer_util.hpp"

namespace kpt::analysis {
namespace {

// The type both branches agree on: dims that differ become unknown, ranks that differ
// leave the shape unknown.
ir::Type join(const ir::Type* a, const ir::Type* b) {
  if (!a) return b ? *b : ir::Type{};
  if (!b || a->kind != ir::Type::Kind::Tensor || b->kind != ir::Type::Kind::Tensor) return *a;
  ir::Type r = *a;
  if (!a->shape || !b->shape || a->shape->size() != b->shape->size()) {
    r.shape.reset();
    return r;
  }
  for (size_t k = 0; k < r.shape->size(); ++k) {
    if (!same_dim((*a->shape)[k], (*b->shape)[k])) (*r.shape)[k] = ir::Dim{};
  }
  return r;
}

const ir::Type* body_output(const ir::Graph* body, size_t k) {
  if (!body || k >= body->outputs.size()) return nullptr;
  return body->type_of(body->outputs[k].name);
}

void infer_if(InferContext& ctx) {
  const ir::Graph* then_branch = ctx.node.attr_graph("then_branch");
  const ir::Graph* else_branch = ctx.node.attr_graph("else_branch");
  for (size_t k = 0; k < ctx.outputs.size(); ++k) {
    ctx.outputs[k] = join(body_output(then_branch, k), body_output(else_branch, k));
  }
}

// Loop outputs: the loop-carried values (body outputs 1..N), then scan outputs stacked
// along a new leading dim of unknown length.
void infer_loop(InferContext& ctx) {
  const ir::Graph* body = ctx.node.attr_graph("body");
  const size_t carried = ctx.node.inputs.size() >= 2 ? ctx.node.inputs.size() - 2 : 0;
  for (size_t k = 0; k < ctx.outputs.size(); ++k) {
    const ir::Type* t = body_output(body, k + 1);
    if (!t) continue;
    ir::Type r = *t;
    if (k >= carried && r.kind == ir::Type::Kind::Tensor && r.shape) {
      r.shape->insert(r.shape->begin(), ir::Dim{});
    }
    ctx.outputs[k] = r;
  }
}

}  // namespace

KPT_REGISTER_INFER("", "If", infer_if);
KPT_REGISTER_INFER("", "Loop", infer_loop);

}  // namespace kpt::analysis
