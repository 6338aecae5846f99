// Inference for the compute-heavy ops: MatMul, Gemm, convolutions and pooling, reductions,
// Attention.
#include <algorithm>

#include "analysis/infer_util.hpp"

namespace kpt::analysis {
namespace {

void infer_matmul(InferContext& ctx) {
  const DType dtype = ctx.node.op_type == "MatMulInteger" ? DType::I32 : input_dtype(ctx, 0);
  auto a = input_shape(ctx, 0), b = input_shape(ctx, 1);
  if (!a || !b || a->empty() || b->empty()) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const bool a_vector = a->size() == 1, b_vector = b->size() == 1;
  ir::Shape sa = *a, sb = *b;
  if (a_vector) sa.insert(sa.begin(), ir::Dim::of(1));
  if (b_vector) sb.push_back(ir::Dim::of(1));
  ir::Shape batch =
      broadcast_shapes(ir::Shape(sa.begin(), sa.end() - 2), ir::Shape(sb.begin(), sb.end() - 2));
  if (!a_vector) batch.push_back(sa[sa.size() - 2]);
  if (!b_vector) batch.push_back(sb.back());
  set_output(ctx, 0, dtype, batch);
}

void infer_gemm(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto a = input_shape(ctx, 0), b = input_shape(ctx, 1);
  if (!a || !b || a->size() != 2 || b->size() != 2) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const bool ta = ctx.node.attr_int("transA", 0) != 0, tb = ctx.node.attr_int("transB", 0) != 0;
  set_output(ctx, 0, dtype, ir::Shape{(*a)[ta ? 1 : 0], (*b)[tb ? 0 : 1]});
}

// Spatial geometry shared by Conv, ConvTranspose and the pools.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad;
};

Window window_of(const InferContext& ctx, size_t spatial, std::vector<int64_t> kernel) {
  Window w;
  w.kernel = ctx.node.attr_ints("kernel_shape", std::move(kernel));
  w.strides = ctx.node.attr_ints("strides", std::vector<int64_t>(spatial, 1));
  w.dilations = ctx.node.attr_ints("dilations", std::vector<int64_t>(spatial, 1));
  w.pads = ctx.node.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
  w.auto_pad = ctx.node.attr_string("auto_pad", "NOTSET");
  check(w.kernel.size() == spatial && w.strides.size() == spatial &&
            w.dilations.size() == spatial && w.pads.size() == 2 * spatial,
        "kernel_shape, strides, dilations or pads do not match " + std::to_string(spatial) +
            " spatial dims");
  return w;
}

ir::Dim window_output(const ir::Dim& in, const Window& w, size_t k, bool ceil_mode) {
  const int64_t stride = w.strides[k];
  const int64_t span = w.dilations[k] * (w.kernel[k] - 1) + 1;
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
    if (!in.known()) return stride == 1 ? in : ir::Dim{};
    return ir::Dim::of((in.value + stride - 1) / stride);
  }
  const int64_t pad = w.auto_pad == "VALID" ? 0 : w.pads[k] + w.pads[k + w.kernel.size()];
  if (!in.known()) {
    if (stride == 1 && span - 1 == pad) return in;
    return stride == 1 ? dim_add(in, int_dim(pad - span + 1)) : ir::Dim{};
  }
  const int64_t room = in.value + pad - span;
  if (room < 0) return ir::Dim::of(0);
  int64_t n = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // With ceil_mode, a last window that would start inside the end padding is dropped.
  if (ceil_mode && (n - 1) * stride >= in.value + w.pads[k]) --n;
  return ir::Dim::of(n);
}

void infer_conv(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto x = input_shape(ctx, 0), wt = input_shape(ctx, 1);
  if (!x || x->size() < 3) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const size_t spatial = x->size() - 2;
  std::vector<int64_t> kernel;
  if (wt && wt->size() == x->size()) {
    for (size_t k = 0; k < spatial; ++k)
      kernel.push_back((*wt)[k + 2].known() ? (*wt)[k + 2].value : -1);
  }
  if (kernel.empty()) kernel.assign(spatial, -1);  // no weight shape: spatial dims unknown
  Window w = window_of(ctx, spatial, kernel);
  ir::Shape out{(*x)[0], wt ? (*wt)[0] : ir::Dim{}};
  for (size_t k = 0; k < spatial; ++k) {
    out.push_back(w.kernel[k] < 0 ? ir::Dim{} : window_output((*x)[k + 2], w, k, false));
  }
  set_output(ctx, 0, dtype, out);
}

void infer_conv_transpose(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto x = input_shape(ctx, 0), wt = input_shape(ctx, 1);
  if (!x || x->size() < 3 || !wt || wt->size() != x->size()) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const size_t spatial = x->size() - 2;
  std::vector<int64_t> kernel;
  for (size_t k = 0; k < spatial; ++k)
    kernel.push_back((*wt)[k + 2].known() ? (*wt)[k + 2].value : 1);
  Window w = window_of(ctx, spatial, kernel);
  const auto output_padding =
      ctx.node.attr_ints("output_padding", std::vector<int64_t>(spatial, 0));
  const auto output_shape = ctx.node.attr_ints("output_shape");
  const int64_t group = ctx.node.attr_int("group", 1);
  ir::Shape out{(*x)[0], dim_mul((*wt)[1], ir::Dim::of(group))};
  for (size_t k = 0; k < spatial; ++k) {
    const ir::Dim& in = (*x)[k + 2];
    if (output_shape.size() == spatial) {
      out.push_back(ir::Dim::of(output_shape[k]));
    } else if (!in.known()) {
      out.push_back(ir::Dim{});
    } else if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      out.push_back(ir::Dim::of(in.value * w.strides[k]));
    } else {
      const int64_t pad = w.auto_pad == "VALID" ? 0 : w.pads[k] + w.pads[k + spatial];
      out.push_back(ir::Dim::of(w.strides[k] * (in.value - 1) + output_padding[k] +
                                (w.kernel[k] - 1) * w.dilations[k] + 1 - pad));
    }
  }
  set_output(ctx, 0, dtype, out);
}

void infer_pool(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto x = input_shape(ctx, 0);
  if (!x || x->size() < 3) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const size_t spatial = x->size() - 2;
  Window w = window_of(ctx, spatial, {});
  const bool ceil_mode = ctx.node.attr_int("ceil_mode", 0) != 0;
  ir::Shape out{(*x)[0], (*x)[1]};
  for (size_t k = 0; k < spatial; ++k) out.push_back(window_output((*x)[k + 2], w, k, ceil_mode));
  set_output(ctx, 0, dtype, out);
  set_output(ctx, 1, DType::I64, out);  // MaxPool's indices
}

void infer_global_pool(InferContext& ctx) {
  auto x = input_shape(ctx, 0);
  if (x) {
    for (size_t k = 2; k < x->size(); ++k) (*x)[k] = ir::Dim::of(1);
  }
  set_output(ctx, 0, input_dtype(ctx, 0), x);
}

// Reduce*: axes from the attribute (older opsets) or input 1; no axes reduces all unless
// noop_with_empty_axes.
void infer_reduce(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto x = input_shape(ctx, 0);
  auto axes = ints_from_attr_or_input(ctx, "axes", 1);
  const bool keep = ctx.node.attr_int("keepdims", 1) != 0;
  if (!x || !axes) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  std::vector<bool> reduced(x->size(), false);
  if (axes->empty()) {
    if (ctx.node.attr_int("noop_with_empty_axes", 0) != 0) {
      set_output(ctx, 0, dtype, x);
      return;
    }
    reduced.assign(x->size(), true);
  }
  for (int64_t a : *axes) reduced[static_cast<size_t>(normalize_axis_for(a, x->size()))] = true;
  ir::Shape out;
  for (size_t k = 0; k < x->size(); ++k) {
    if (!reduced[k]) {
      out.push_back((*x)[k]);
    } else if (keep) {
      out.push_back(ir::Dim::of(1));
    }
  }
  set_output(ctx, 0, dtype, out);
}

void infer_arg_reduce(InferContext& ctx) {
  auto x = input_shape(ctx, 0);
  if (!x) {
    set_output(ctx, 0, DType::I64, std::nullopt);
    return;
  }
  const auto axis =
      static_cast<size_t>(normalize_axis_for(ctx.node.attr_int("axis", 0), x->size()));
  ir::Shape out = *x;
  if (ctx.node.attr_int("keepdims", 1) != 0) {
    out[axis] = ir::Dim::of(1);
  } else {
    out.erase(out.begin() + static_cast<int64_t>(axis));
  }
  set_output(ctx, 0, DType::I64, out);
}

// Attention (opset 23): 4-D Q [B, Hq, Sq, Dh] gives [B, Hq, Sq, Dv]; 3-D Q [B, Sq, Hq*Dh]
// gives [B, Sq, Hq*Dv] with Dv from V [B, Skv, Hkv*Dv].
void infer_attention(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto q = input_shape(ctx, 0), v = input_shape(ctx, 2);
  if (!q || !v || q->size() != v->size()) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  ir::Shape out = *q;
  if (q->size() == 4) {
    out[3] = v->back();
  } else if (q->size() == 3) {
    const int64_t hq = ctx.node.attr_int("q_num_heads", 0),
                  hkv = ctx.node.attr_int("kv_num_heads", 0);
    out[2] = hq > 0 && hkv > 0 ? dim_mul(dim_div(v->back(), ir::Dim::of(hkv)), ir::Dim::of(hq))
                               : ir::Dim{};
  }
  set_output(ctx, 0, dtype, out);
}

}  // namespace

KPT_REGISTER_INFER("", "MatMul", infer_matmul);
KPT_REGISTER_INFER("", "MatMulInteger", infer_matmul);
KPT_REGISTER_INFER("", "Gemm", infer_gemm);
KPT_REGISTER_INFER("", "Conv", infer_conv);
KPT_REGISTER_INFER("", "ConvTranspose", infer_conv_transpose);
KPT_REGISTER_INFER("", "MaxPool", infer_pool);
KPT_REGISTER_INFER("", "AveragePool", infer_pool);
KPT_REGISTER_INFER("", "LpPool", infer_pool);
KPT_REGISTER_INFER("", "GlobalAveragePool", infer_global_pool);
KPT_REGISTER_INFER("", "GlobalMaxPool", infer_global_pool);
KPT_REGISTER_INFER("", "GlobalLpPool", infer_global_pool);
KPT_REGISTER_INFER("", "ReduceSum", infer_reduce);
KPT_REGISTER_INFER("", "ReduceMean", infer_reduce);
KPT_REGISTER_INFER("", "ReduceMax", infer_reduce);
KPT_REGISTER_INFER("", "ReduceMin", infer_reduce);
KPT_REGISTER_INFER("", "ReduceProd", infer_reduce);
KPT_REGISTER_INFER("", "ReduceL1", infer_reduce);
KPT_REGISTER_INFER("", "ReduceL2", infer_reduce);
KPT_REGISTER_INFER("", "ReduceLogSum", infer_reduce);
KPT_REGISTER_INFER("", "ReduceLogSumExp", infer_reduce);
KPT_REGISTER_INFER("", "ReduceSumSquare", infer_reduce);
KPT_REGISTER_INFER("", "ArgMax", infer_arg_reduce);
KPT_REGISTER_INFER("", "ArgMin", infer_arg_reduce);
KPT_REGISTER_INFER("", "Attention", infer_attention);

}  // namespace kpt::analysis
