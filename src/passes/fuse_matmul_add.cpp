// Fuses MatMul(A, W) + bias into Gemm(A, W, bias) where Gemm is exactly the same computation:
// A is 2-D, W is a 2-D float constant and bias a constant that broadcasts onto one row of the
// product. MatMul of higher rank (batched, as in transformer blocks) stays as it is.
#include <algorithm>

#include "analysis/shape_inference.hpp"
#include "kpt/error.hpp"
#include "passes/pass.hpp"
#include "passes/pattern.hpp"

namespace kpt::passes {
namespace {

// bias broadcasts onto [M, n] without growing it: [], [1], [n], [1, 1], [1, n].
bool row_bias(const Tensor& b, int64_t n) {
  const Dims& d = b.dims();
  if (d.size() > 2 || (d.size() == 2 && d[0] != 1)) return false;
  return d.empty() || d.back() == 1 || d.back() == n;
}

class FuseMatMulAdd : public Pass {
 public:
  std::string name() const override { return "fuse_matmul_add"; }
  Level level() const override { return Level::Extended; }
  int run(ir::Graph& g) override {
    bool inferred = false;
    PatternIndex ix(g);
    for (int i = 0; i < ix.size(); ++i) {
      if (ix.claimed(i) || !is_op(ix.node(i), "MatMul")) continue;
      const ir::Node& mm = ix.node(i);
      if (mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
      const Tensor* w = float_constant(g, mm.inputs[1]);
      if (!w || w->rank() != 2 || (w->dtype() != DType::F32 && w->dtype() != DType::F64)) continue;
      const int add = ix.sole_reader(mm.outputs[0], "Add");
      if (add < 0) continue;
      auto bias = other_input(ix.node(add), mm.outputs[0]);
      if (!bias) continue;
      const Tensor* b = float_constant(g, *bias);
      if (!b || b->dtype() != w->dtype() || !row_bias(*b, w->dims()[1])) continue;
      auto rank = rank_of(g, mm.inputs[0]);
      if (!rank && !inferred) {
        // Shapes are only needed here; the candidate is rare enough to infer them lazily.
        try {
          analysis::infer_shapes(g);
        } catch (const Error&) {
          // Without shapes nothing is fused.
        }
        inferred = true;
        rank = rank_of(g, mm.inputs[0]);
      }
      if (rank != 2) continue;
      ir::Node fused;
      fused.name = ix.node(add).name;
      fused.op_type = "Gemm";
      fused.opset = std::max(13, mm.opset);
      fused.inputs = {mm.inputs[0], mm.inputs[1], *bias};
      fused.outputs = {ix.node(add).outputs[0]};
      ix.replace({i, add}, std::move(fused));
    }
    return ix.apply(g);
  }
};

}  // namespace
KPT_REGISTER_PASS(56, FuseMatMulAdd);
}  // namespace kpt::passes
