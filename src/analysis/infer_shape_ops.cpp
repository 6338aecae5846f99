// Inference for ops that move data without computing on it (Shape, Reshape, Squeeze, Concat,
// Slice, Gather, Expand, Transpose, ...) and for ops that create tensors from shape values
// (ConstantOfShape, Range). These carry shape values too, which is what resolves the
// Shape -> Gather -> Concat -> Reshape chains of exported models.
#include <algorithm>
#include <limits>

#include "analysis/infer_util.hpp"

namespace kpt::analysis {
namespace {

ir::Dim unknown() {
  return ir::Dim{};
}

void pass_value(InferContext& ctx) {
  if (auto v = input_value(ctx, 0)) set_output_value(ctx, 0, *v);
}

void infer_shape(InferContext& ctx) {
  auto s = input_shape(ctx, 0);
  if (!s) {
    set_output(ctx, 0, DType::I64, std::nullopt);
    return;
  }
  const auto rank = static_cast<int64_t>(s->size());
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(ctx.node.attr_int("start", 0));
  const int64_t end = clamp(ctx.node.attr_int("end", rank));
  ir::Shape value(s->begin() + start, s->begin() + std::max(start, end));
  set_output(ctx, 0, DType::I64, ir::Shape{ir::Dim::of(static_cast<int64_t>(value.size()))});
  set_output_value(ctx, 0, value);
}

void infer_size(InferContext& ctx) {
  set_output(ctx, 0, DType::I64, ir::Shape{});
  if (auto s = input_shape(ctx, 0)) set_output_value(ctx, 0, {dim_product(*s)});
}

void infer_reshape(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto data = input_shape(ctx, 0);
  auto target = input_value(ctx, 1);
  if (!target) {
    // Rank is still known from the length of the shape input.
    auto ts = input_shape(ctx, 1);
    if (ts && ts->size() == 1 && (*ts)[0].known()) {
      set_output(ctx, 0, dtype, ir::Shape(static_cast<size_t>((*ts)[0].value)));
    } else {
      set_output(ctx, 0, dtype, std::nullopt);
    }
    return;
  }
  const bool allow_zero = ctx.node.attr_int("allowzero", 0) != 0;
  ir::Shape out(target->size());
  int infer_at = -1;
  for (size_t k = 0; k < target->size(); ++k) {
    auto v = dim_int((*target)[k]);
    if (v && *v == -1) {
      infer_at = static_cast<int>(k);
    } else if (v && *v == 0 && !allow_zero) {
      out[k] = data && k < data->size() ? (*data)[k] : unknown();
    } else if (v && *v < 0) {
      out[k] = unknown();  // not a valid target; leave the dim unknown
    } else {
      out[k] = (*target)[k];
    }
  }
  if (infer_at >= 0) {
    ir::Dim rest = ir::Dim::of(1);
    for (size_t k = 0; k < out.size(); ++k) {
      if (static_cast<int>(k) != infer_at) rest = dim_mul(rest, out[k]);
    }
    out[static_cast<size_t>(infer_at)] = data ? dim_div(dim_product(*data), rest) : unknown();
  }
  set_output(ctx, 0, dtype, out);
  pass_value(ctx);
}

void infer_flatten(InferContext& ctx) {
  auto s = input_shape(ctx, 0);
  if (!s) {
    set_output(ctx, 0, input_dtype(ctx, 0), ir::Shape(2));
    return;
  }
  int64_t axis = ctx.node.attr_int("axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(s->size());
  axis = std::clamp(axis, int64_t{0}, static_cast<int64_t>(s->size()));
  ir::Shape head(s->begin(), s->begin() + axis), tail(s->begin() + axis, s->end());
  set_output(ctx, 0, input_dtype(ctx, 0), ir::Shape{dim_product(head), dim_product(tail)});
  pass_value(ctx);
}

void infer_squeeze(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  auto axes = ints_from_attr_or_input(ctx, "axes", 1);
  pass_value(ctx);
  if (!s || !axes) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  std::vector<bool> drop(s->size(), false);
  if (axes->empty()) {
    for (size_t k = 0; k < s->size(); ++k) {
      if (!(*s)[k].known()) {
        // Whether a symbolic dim is 1 decides the rank: unknown.
        set_output(ctx, 0, dtype, std::nullopt);
        return;
      }
      drop[k] = (*s)[k].value == 1;
    }
  } else {
    for (int64_t a : *axes) drop[static_cast<size_t>(normalize_axis_for(a, s->size()))] = true;
  }
  ir::Shape out;
  for (size_t k = 0; k < s->size(); ++k) {
    if (!drop[k]) out.push_back((*s)[k]);
  }
  set_output(ctx, 0, dtype, out);
}

void infer_unsqueeze(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  auto axes = ints_from_attr_or_input(ctx, "axes", 1);
  pass_value(ctx);
  if (!s || !axes) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const size_t rank = s->size() + axes->size();
  std::vector<bool> inserted(rank, false);
  for (int64_t a : *axes) inserted[static_cast<size_t>(normalize_axis_for(a, rank))] = true;
  ir::Shape out;
  size_t next = 0;
  for (size_t k = 0; k < rank; ++k) {
    if (inserted[k]) {
      out.push_back(ir::Dim::of(1));
    } else if (next < s->size()) {
      out.push_back((*s)[next++]);
    }
  }
  set_output(ctx, 0, dtype, out);
}

void infer_concat(InferContext& ctx) {
  DType dtype = DType::Undefined;
  std::optional<ir::Shape> out;
  size_t axis = 0;
  bool all_values = true;
  ir::Shape values;
  for (size_t i = 0; i < ctx.node.inputs.size(); ++i) {
    if (!has_input(ctx, i)) continue;
    if (dtype == DType::Undefined) dtype = input_dtype(ctx, i);
    auto v = input_value(ctx, i);
    if (v) {
      values.insert(values.end(), v->begin(), v->end());
    } else {
      all_values = false;
    }
    auto s = input_shape(ctx, i);
    if (!s) {
      out.reset();
      all_values = all_values && v.has_value();
      for (size_t j = i + 1; j < ctx.node.inputs.size(); ++j) {
        auto vj = input_value(ctx, j);
        if (!vj) all_values = false;
        if (vj) values.insert(values.end(), vj->begin(), vj->end());
      }
      set_output(ctx, 0, dtype, std::nullopt);
      if (all_values) set_output_value(ctx, 0, values);
      return;
    }
    if (!out) {
      out = *s;
      axis = static_cast<size_t>(normalize_axis_for(ctx.node.attr_int("axis", 0), s->size()));
      continue;
    }
    if (s->size() != out->size()) fail("inputs of different ranks");
    for (size_t k = 0; k < s->size(); ++k) {
      if (k == axis) {
        (*out)[k] = dim_add((*out)[k], (*s)[k]);
      } else if (!(*out)[k].known() && (*s)[k].known()) {
        (*out)[k] = (*s)[k];
      }
    }
  }
  set_output(ctx, 0, dtype, out);
  if (all_values) set_output_value(ctx, 0, values);
}

void infer_split(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  const size_t n = ctx.node.outputs.size();
  if (!s) {
    for (size_t k = 0; k < n; ++k) set_output(ctx, k, dtype, std::nullopt);
    return;
  }
  const auto axis =
      static_cast<size_t>(normalize_axis_for(ctx.node.attr_int("axis", 0), s->size()));
  auto sizes = ints_from_attr_or_input(ctx, "split", 1);
  const ir::Dim whole = (*s)[axis];
  for (size_t k = 0; k < n; ++k) {
    ir::Shape out = *s;
    if (sizes && !sizes->empty()) {
      out[axis] = k < sizes->size() ? ir::Dim::of((*sizes)[k]) : unknown();
    } else if (!sizes) {
      out[axis] = unknown();
    } else if (whole.known()) {
      // Equal parts; the last is smaller when the dim does not divide (opset 18).
      const int64_t part = (whole.value + static_cast<int64_t>(n) - 1) / static_cast<int64_t>(n);
      const int64_t begin = part * static_cast<int64_t>(k);
      out[axis] = ir::Dim::of(std::clamp(whole.value - begin, int64_t{0}, part));
    } else {
      out[axis] = dim_div(whole, ir::Dim::of(static_cast<int64_t>(n)));
    }
    set_output(ctx, k, dtype, out);
  }
}

// Clamped [start, end) of a slice of a dim of known size, by ONNX's rules.
std::pair<int64_t, int64_t> slice_bounds(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) return {std::clamp(start, int64_t{0}, dim), std::clamp(end, int64_t{0}, dim)};
  return {std::clamp(start, int64_t{0}, dim - 1), std::clamp(end, int64_t{-1}, dim - 1)};
}

int64_t slice_count(int64_t dim, int64_t start, int64_t end, int64_t step) {
  auto [s, e] = slice_bounds(dim, start, end, step);
  if (step > 0) return std::max<int64_t>(0, (e - s + step - 1) / step);
  return std::max<int64_t>(0, (s - e + (-step) - 1) / (-step));
}

// Size of a slice of a symbolic dim, or of a known dim up to a symbolic end; only the
// common forward slices (step 1, start >= 0) are resolved. Ends inside the dim are assumed to
// lie within it, as exporters emit them.
ir::Dim symbolic_slice(const ir::Dim& d, const ir::Dim& start, const ir::Dim& end, int64_t step) {
  auto s = dim_int(start), e = dim_int(end);
  if (step != 1 || !s || *s < 0) return unknown();
  if (!e) return dim_sub(end, ir::Dim::of(*s));  // arange-like: [s, seq)
  if (*e >= std::numeric_limits<int32_t>::max()) return dim_sub(d, ir::Dim::of(*s));
  if (*e >= *s) return ir::Dim::of(*e - *s);
  if (*e < 0) return dim_sub(d, ir::Dim::of(*s - *e));  // [s, d - |e|)
  return unknown();
}

void infer_slice(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  std::optional<ir::Shape> starts, ends;
  std::optional<std::vector<int64_t>> axes, steps;
  if (ctx.node.opset < 10) {
    starts = shape_of_dims(ctx.node.attr_ints("starts"));
    ends = shape_of_dims(ctx.node.attr_ints("ends"));
    axes = ctx.node.attr_ints("axes");
    steps = std::vector<int64_t>{};
  } else {
    starts = input_value(ctx, 1);
    ends = input_value(ctx, 2);
    axes = has_input(ctx, 3) ? input_ints(ctx, 3) : std::vector<int64_t>{};
    steps = has_input(ctx, 4) ? input_ints(ctx, 4) : std::vector<int64_t>{};
  }
  if (!s) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  if (!starts || !ends || !axes || !steps) {
    // Which axes change is unknown unless axes is given.
    ir::Shape out = *s;
    if (axes && !axes->empty()) {
      for (int64_t a : *axes)
        out[static_cast<size_t>(normalize_axis_for(a, s->size()))] = unknown();
    } else {
      for (auto& d : out) d = unknown();
    }
    set_output(ctx, 0, dtype, out);
    return;
  }
  if (axes->empty()) {
    for (size_t k = 0; k < starts->size(); ++k) axes->push_back(static_cast<int64_t>(k));
  }
  if (steps->empty()) steps->assign(starts->size(), 1);
  check(starts->size() == ends->size() && starts->size() == axes->size() &&
            starts->size() == steps->size(),
        "starts, ends, axes and steps differ in length");
  ir::Shape out = *s;
  auto value = input_value(ctx, 0);
  bool value_ok = value && s->size() == 1;
  for (size_t k = 0; k < starts->size(); ++k) {
    const auto axis = static_cast<size_t>(normalize_axis_for((*axes)[k], s->size()));
    const int64_t step = (*steps)[k];
    check(step != 0, "a slice step is 0");
    const ir::Dim& d = (*s)[axis];
    auto start = dim_int((*starts)[k]), end = dim_int((*ends)[k]);
    if (d.known() && start && end) {
      out[axis] = ir::Dim::of(slice_count(d.value, *start, *end, step));
      if (value_ok && axis == 0) {
        ir::Shape sliced;
        auto [b, e] = slice_bounds(d.value, *start, *end, step);
        for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
          sliced.push_back((*value)[static_cast<size_t>(i)]);
        }
        value = sliced;
      }
    } else {
      out[axis] = symbolic_slice(d, (*starts)[k], (*ends)[k], step);
      value_ok = false;
    }
  }
  set_output(ctx, 0, dtype, out);
  if (value_ok) set_output_value(ctx, 0, *value);
}

void infer_gather(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto data = input_shape(ctx, 0);
  auto indices = input_shape(ctx, 1);
  if (!data || !indices) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const auto axis =
      static_cast<size_t>(normalize_axis_for(ctx.node.attr_int("axis", 0), data->size()));
  ir::Shape out(data->begin(), data->begin() + static_cast<int64_t>(axis));
  out.insert(out.end(), indices->begin(), indices->end());
  out.insert(out.end(), data->begin() + static_cast<int64_t>(axis) + 1, data->end());
  set_output(ctx, 0, dtype, out);
  // Picking elements of a shape value (Gather(Shape(x), 0) is "the batch dim").
  auto value = input_value(ctx, 0);
  auto picks = input_ints(ctx, 1);
  if (value && picks && data->size() == 1) {
    ir::Shape picked;
    const auto n = static_cast<int64_t>(value->size());
    for (int64_t p : *picks) {
      if (p < 0) p += n;
      if (p < 0 || p >= n) return;
      picked.push_back((*value)[static_cast<size_t>(p)]);
    }
    set_output_value(ctx, 0, picked);
  }
}

void infer_gather_elements(InferContext& ctx) {
  set_output(ctx, 0, input_dtype(ctx, 0), input_shape(ctx, 1));
}

void infer_gather_nd(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto data = input_shape(ctx, 0);
  auto indices = input_shape(ctx, 1);
  if (!data || !indices || indices->empty() || !indices->back().known()) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  const auto batch = static_cast<size_t>(ctx.node.attr_int("batch_dims", 0));
  const auto depth = static_cast<size_t>(indices->back().value);
  check(batch + depth <= data->size(), "indices reach past the data's rank");
  ir::Shape out(indices->begin(), indices->end() - 1);
  out.insert(out.end(), data->begin() + static_cast<int64_t>(batch + depth), data->end());
  set_output(ctx, 0, dtype, out);
}

void infer_expand(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  auto target = input_value(ctx, 1);
  if (!s || !target) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  set_output(ctx, 0, dtype, broadcast_shapes(*s, *target));
}

void infer_transpose(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  if (!s) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  std::vector<int64_t> perm = ctx.node.attr_ints("perm");
  if (perm.empty()) {
    for (size_t k = s->size(); k-- > 0;) perm.push_back(static_cast<int64_t>(k));
  }
  check(perm.size() == s->size(), "perm has " + std::to_string(perm.size()) + " entries for rank " +
                                      std::to_string(s->size()));
  ir::Shape out;
  for (int64_t p : perm) out.push_back((*s)[static_cast<size_t>(normalize_axis_for(p, s->size()))]);
  set_output(ctx, 0, dtype, out);
}

void infer_constant_of_shape(InferContext& ctx) {
  const Tensor* value = ctx.node.attr_tensor("value");
  const DType dtype = value ? value->dtype() : DType::F32;
  auto target = input_value(ctx, 0);
  if (target) {
    set_output(ctx, 0, dtype, *target);
    return;
  }
  auto ts = input_shape(ctx, 0);
  if (ts && ts->size() == 1 && (*ts)[0].known()) {
    set_output(ctx, 0, dtype, ir::Shape(static_cast<size_t>((*ts)[0].value)));
  } else {
    set_output(ctx, 0, dtype, std::nullopt);
  }
}

void infer_range(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto start = input_value(ctx, 0), limit = input_value(ctx, 1), delta = input_value(ctx, 2);
  ir::Dim n = unknown();
  if (start && limit && delta && start->size() == 1 && limit->size() == 1 && delta->size() == 1) {
    auto s = dim_int((*start)[0]), l = dim_int((*limit)[0]), d = dim_int((*delta)[0]);
    if (s && l && d && *d != 0) {
      n = ir::Dim::of(std::max<int64_t>(0, (*l - *s + *d + (*d > 0 ? -1 : 1)) / *d));
    } else if (d && *d == 1) {
      n = dim_sub((*limit)[0], (*start)[0]);  // arange(seq)
    }
  }
  set_output(ctx, 0, dtype, ir::Shape{n});
}

void infer_tile(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  auto repeats = input_value(ctx, 1);
  if (!s) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  ir::Shape out = *s;
  for (size_t k = 0; k < out.size(); ++k) {
    out[k] = repeats && k < repeats->size() ? dim_mul(out[k], (*repeats)[k]) : unknown();
  }
  set_output(ctx, 0, dtype, out);
}

void infer_pad(InferContext& ctx) {
  const DType dtype = input_dtype(ctx, 0);
  auto s = input_shape(ctx, 0);
  if (!s) {
    set_output(ctx, 0, dtype, std::nullopt);
    return;
  }
  std::optional<std::vector<int64_t>> pads =
      ctx.node.opset < 11 ? std::optional(ctx.node.attr_ints("pads")) : input_ints(ctx, 1);
  std::vector<int64_t> axes;
  if (ctx.node.opset >= 18 && has_input(ctx, 3)) {
    auto a = input_ints(ctx, 3);
    if (!a) pads.reset();
    if (a) axes = *a;
  }
  if (axes.empty()) {
    for (size_t k = 0; k < s->size(); ++k) axes.push_back(static_cast<int64_t>(k));
  }
  ir::Shape out = *s;
  if (!pads || pads->size() != 2 * axes.size()) {
    for (int64_t a : axes) out[static_cast<size_t>(normalize_axis_for(a, s->size()))] = unknown();
  } else {
    for (size_t k = 0; k < axes.size(); ++k) {
      auto a = static_cast<size_t>(normalize_axis_for(axes[k], s->size()));
      out[a] = dim_add(out[a], ir::Dim::of((*pads)[k] + (*pads)[k + axes.size()]));
    }
  }
  set_output(ctx, 0, dtype, out);
}

void infer_nonzero(InferContext& ctx) {
  auto r = input_rank(ctx, 0);
  set_output(ctx, 0, DType::I64,
             r ? std::optional(ir::Shape{ir::Dim::of(static_cast<int64_t>(*r)), unknown()})
               : std::nullopt);
}

void infer_topk(InferContext& ctx) {
  auto s = input_shape(ctx, 0);
  std::optional<ir::Shape> out;
  if (s) {
    out = *s;
    auto axis = static_cast<size_t>(normalize_axis_for(ctx.node.attr_int("axis", -1), s->size()));
    auto k = ctx.node.opset < 10 ? std::optional(std::vector<int64_t>{ctx.node.attr_int("k", 0)})
                                 : input_ints(ctx, 1);
    (*out)[axis] = k && k->size() == 1 ? ir::Dim::of((*k)[0]) : unknown();
  }
  set_output(ctx, 0, input_dtype(ctx, 0), out);
  set_output(ctx, 1, DType::I64, out);
}

}  // namespace

KPT_REGISTER_INFER("", "Shape", infer_shape);
KPT_REGISTER_INFER("", "Size", infer_size);
KPT_REGISTER_INFER("", "Reshape", infer_reshape);
KPT_REGISTER_INFER("", "Flatten", infer_flatten);
KPT_REGISTER_INFER("", "Squeeze", infer_squeeze);
KPT_REGISTER_INFER("", "Unsqueeze", infer_unsqueeze);
KPT_REGISTER_INFER("", "Concat", infer_concat);
KPT_REGISTER_INFER("", "Split", infer_split);
KPT_REGISTER_INFER("", "Slice", infer_slice);
KPT_REGISTER_INFER("", "Gather", infer_gather);
KPT_REGISTER_INFER("", "GatherElements", infer_gather_elements);
KPT_REGISTER_INFER("", "GatherND", infer_gather_nd);
KPT_REGISTER_INFER("", "Expand", infer_expand);
KPT_REGISTER_INFER("", "Transpose", infer_transpose);
KPT_REGISTER_INFER("", "ConstantOfShape", infer_constant_of_shape);
KPT_REGISTER_INFER("", "Range", infer_range);
KPT_REGISTER_INFER("", "Tile", infer_tile);
KPT_REGISTER_INFER("", "Pad", infer_pad);
KPT_REGISTER_INFER("", "NonZero", infer_nonzero);
KPT_REGISTER_INFER("", "TopK", infer_topk);

}  // namespace kpt::analysis
