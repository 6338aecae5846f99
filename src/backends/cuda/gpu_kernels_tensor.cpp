// GPU adapters for shape and layout ops: views (Reshape, Flatten, Squeeze, Unsqueeze,
// Identity), Transpose, Slice, Concat, Gather (axis 0) and Cast.
#include <algorithm>
#include <numeric>

#include "backends/cuda/elementwise.hpp"
#include "backends/cuda/embedding.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "backends/cuda/strided_copy.hpp"

namespace kpt::cuda {

namespace {

// Row-major element strides of `dims`.
std::vector<int64_t> strides_of(const Dims& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

void check_rank(const ir::Node& node, size_t rank) {
  if (rank > static_cast<size_t>(kMaxCopyRank))
    throw Error(node.label() + ": rank " + std::to_string(rank) + " is over the GPU copy's " +
                std::to_string(kMaxCopyRank));
}

// --- views: the output is the input's memory with other dims -------------------------------

Dims reshape_dims(const ir::Node& node, const Dims& in, const std::vector<int64_t>& shape) {
  const bool allow_zero = node.attr_int("allowzero", 0) != 0;
  Dims out(shape.begin(), shape.end());
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allow_zero) {
      if (i >= in.size())
        throw Error(node.label() + ": shape copies dim " + std::to_string(i) + " that the input " +
                    dims_to_string(in) + " does not have");
      out[i] = in[i];
    }
    if (out[i] == -1) {
      if (infer >= 0) throw Error(node.label() + ": shape has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    known *= out[i];
  }
  const int64_t total = element_count(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      throw Error(node.label() + ": cannot reshape " + dims_to_string(in) + " to " +
                  dims_to_string(shape));
    out[static_cast<size_t>(infer)] = total / known;
  }
  if (element_count(out) != total)
    throw Error(node.label() + ": cannot reshape " + dims_to_string(in) + " to " +
                dims_to_string(out));
  return out;
}

std::unique_ptr<GpuKernel> make_reshape(const GpuPrepareContext& c) {
  if (!c.has_input(1) || !c.host_known[1]) return nullptr;
  const ir::Node& node = c.node;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.view",
      [&node](GpuRunContext&, GpuArgs& a) {
        a.out[0] = a.in[0]->view(reshape_dims(node, a.in[0]->dims(), a.host[1]->to_i64_vector()));
      },
      std::vector<bool>{false, true});
}

std::unique_ptr<GpuKernel> make_flatten(const GpuPrepareContext& c) {
  const ir::Node& node = c.node;
  return std::make_unique<LambdaGpuKernel>("cuda.view", [&node](GpuRunContext&, GpuArgs& a) {
    const Dims& d = a.in[0]->dims();
    const auto rank = static_cast<int64_t>(d.size());
    int64_t axis = node.attr_int("axis", 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank) throw Error(node.label() + ": axis out of range");
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= d[static_cast<size_t>(i)];
    a.out[0] = a.in[0]->view({outer, element_count(d) / std::max<int64_t>(outer, 1)});
  });
}

// Squeeze/Unsqueeze read axes from an attribute (before opset 13) or a host input.
std::vector<int64_t> axes_of(const ir::Node& node, const GpuArgs& a) {
  if (a.host.size() > 1 && a.host[1]) return a.host[1]->to_i64_vector();
  return node.attr_ints("axes");
}

std::unique_ptr<GpuKernel> make_squeeze(const GpuPrepareContext& c) {
  if (c.has_input(1) && !c.host_known[1]) return nullptr;
  const ir::Node& node = c.node;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.view",
      [&node](GpuRunContext&, GpuArgs& a) {
        const Dims& d = a.in[0]->dims();
        const auto rank = static_cast<int64_t>(d.size());
        std::vector<bool> drop(d.size(), false);
        const auto axes = axes_of(node, a);
        if (axes.empty() && !(a.host.size() > 1 && a.host[1])) {
          for (size_t i = 0; i < d.size(); ++i) drop[i] = d[i] == 1;
        }
        for (int64_t ax : axes) drop[static_cast<size_t>(normalize_axis(ax, rank, node))] = true;
        Dims out;
        for (size_t i = 0; i < d.size(); ++i) {
          if (!drop[i]) out.push_back(d[i]);
        }
        a.out[0] = a.in[0]->view(out);
      },
      std::vector<bool>{false, true});
}

std::unique_ptr<GpuKernel> make_unsqueeze(const GpuPrepareContext& c) {
  if (c.has_input(1) && !c.host_known[1]) return nullptr;
  const ir::Node& node = c.node;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.view",
      [&node](GpuRunContext&, GpuArgs& a) {
        const Dims& d = a.in[0]->dims();
        const auto axes = axes_of(node, a);
        const auto rank = static_cast<int64_t>(d.size() + axes.size());
        std::vector<bool> added(static_cast<size_t>(rank), false);
        for (int64_t ax : axes) added[static_cast<size_t>(normalize_axis(ax, rank, node))] = true;
        Dims out;
        size_t k = 0;
        for (size_t i = 0; i < added.size(); ++i) out.push_back(added[i] ? 1 : d[k++]);
        a.out[0] = a.in[0]->view(out);
      },
      std::vector<bool>{false, true});
}

std::unique_ptr<GpuKernel> make_identity(const GpuPrepareContext&) {
  return std::make_unique<LambdaGpuKernel>("cuda.view",
                                           [](GpuRunContext&, GpuArgs& a) { a.out[0] = *a.in[0]; });
}

// --- copies -------------------------------------------------------------------------------

std::unique_ptr<GpuKernel> make_transpose(const GpuPrepareContext& c) {
  const ir::Node& node = c.node;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.transpose", [&node](GpuRunContext& ctx, GpuArgs& a) {
        const DeviceBuffer& x = *a.in[0];
        const Dims& d = x.dims();
        check_rank(node, d.size());
        std::vector<int64_t> perm = node.attr_ints("perm");
        if (perm.empty()) {
          perm.resize(d.size());
          std::iota(perm.rbegin(), perm.rend(), 0);
        }
        if (perm.size() != d.size())
          throw Error(node.label() + ": perm has " + std::to_string(perm.size()) +
                      " entries for rank " + std::to_string(d.size()));
        const auto in_strides = strides_of(d);
        Dims out(d.size());
        StridedCopy cp;
        cp.rank = static_cast<int>(d.size());
        cp.elem_size = dtype_size(x.dtype());
        for (size_t i = 0; i < perm.size(); ++i) {
          const auto p = static_cast<size_t>(normalize_axis(perm[i], cp.rank, node));
          out[i] = d[p];
          cp.dims[i] = d[p];
          cp.src_strides[i] = in_strides[p];
        }
        const auto out_strides = strides_of(out);
        for (size_t i = 0; i < out.size(); ++i) cp.dst_strides[i] = out_strides[i];
        a.out[0] = ctx.alloc.allocate(x.dtype(), out);
        if (cp.rank == 0) {
          cp.rank = 1;
          cp.dims[0] = 1;
          cp.src_strides[0] = cp.dst_strides[0] = 1;
        }
        strided_copy(cp, x.data(), a.out[0].data(), ctx.stream);
      });
}

std::unique_ptr<GpuKernel> make_slice(const GpuPrepareContext& c) {
  if (c.node.opset < 10) return nullptr;  // bounds as attributes: leave to the CPU
  for (size_t i = 1; i < c.node.inputs.size(); ++i) {
    if (c.has_input(i) && !c.host_known[i]) return nullptr;
  }
  const ir::Node& node = c.node;
  std::vector<bool> host(c.node.inputs.size(), true);
  host[0] = false;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.slice",
      [&node](GpuRunContext& ctx, GpuArgs& a) {
        const DeviceBuffer& x = *a.in[0];
        const Dims& d = x.dims();
        const auto rank = static_cast<int64_t>(d.size());
        check_rank(node, d.size());
        const auto starts = a.host[1]->to_i64_vector();
        const auto ends = a.host[2]->to_i64_vector();
        std::vector<int64_t> axes, steps;
        if (a.host.size() > 3 && a.host[3]) axes = a.host[3]->to_i64_vector();
        if (a.host.size() > 4 && a.host[4]) steps = a.host[4]->to_i64_vector();
        if (axes.empty()) {
          axes.resize(starts.size());
          std::iota(axes.begin(), axes.end(), 0);
        }
        if (steps.empty()) steps.assign(starts.size(), 1);
        if (ends.size() != starts.size() || axes.size() != starts.size() ||
            steps.size() != starts.size())
          throw Error(node.label() + ": starts, ends, axes and steps differ in length");
        const auto in_strides = strides_of(d);
        Dims out = d;
        StridedCopy cp;
        cp.rank = static_cast<int>(rank);
        cp.elem_size = dtype_size(x.dtype());
        for (size_t i = 0; i < d.size(); ++i) cp.src_strides[i] = in_strides[i];
        for (size_t i = 0; i < starts.size(); ++i) {
          const auto ax = static_cast<size_t>(normalize_axis(axes[i], rank, node));
          const int64_t n = d[ax], step = steps[i];
          if (step == 0) throw Error(node.label() + ": a step is 0");
          // ONNX Slice clamping: [0, n] for positive steps, [-1, n-1] for negative ones.
          auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
            if (v < 0) v += n;
            return std::clamp(v, lo, hi);
          };
          const int64_t s = step > 0 ? clamp(starts[i], 0, n) : clamp(starts[i], -1, n - 1);
          const int64_t e = step > 0 ? clamp(ends[i], 0, n) : clamp(ends[i], -1, n - 1);
          const int64_t len = step > 0 ? std::max<int64_t>(0, (e - s + step - 1) / step)
                                       : std::max<int64_t>(0, (s - e - step - 1) / -step);
          out[ax] = len;
          cp.src_offset += s * in_strides[ax];
          cp.src_strides[ax] = in_strides[ax] * step;
        }
        const auto out_strides = strides_of(out);
        for (size_t i = 0; i < out.size(); ++i) {
          cp.dims[i] = out[i];
          cp.dst_strides[i] = out_strides[i];
        }
        a.out[0] = ctx.alloc.allocate(x.dtype(), out);
        if (rank > 0) strided_copy(cp, x.data(), a.out[0].data(), ctx.stream);
      },
      host);
}

std::unique_ptr<GpuKernel> make_concat(const GpuPrepareContext& c) {
  const ir::Node& node = c.node;
  for (size_t i = 0; i < c.node.inputs.size(); ++i) {
    if (!c.has_input(i)) return nullptr;
  }
  return std::make_unique<LambdaGpuKernel>("cuda.concat", [&node](GpuRunContext& ctx, GpuArgs& a) {
    const Dims& d0 = a.in[0]->dims();
    const auto rank = static_cast<int64_t>(d0.size());
    check_rank(node, d0.size());
    const auto axis = static_cast<size_t>(normalize_axis(node.attr_int("axis", 0), rank, node));
    Dims out = d0;
    out[axis] = 0;
    for (const DeviceBuffer* x : a.in) {
      if (x->dims().size() != d0.size() || x->dtype() != a.in[0]->dtype())
        throw Error(node.label() + ": inputs differ in rank or element type");
      out[axis] += x->dims()[axis];
    }
    a.out[0] = ctx.alloc.allocate(a.in[0]->dtype(), out);
    const auto out_strides = strides_of(out);
    int64_t at = 0;
    for (const DeviceBuffer* x : a.in) {
      const auto in_strides = strides_of(x->dims());
      StridedCopy cp;
      cp.rank = static_cast<int>(rank);
      cp.elem_size = dtype_size(x->dtype());
      for (size_t i = 0; i < out.size(); ++i) {
        cp.dims[i] = x->dims()[i];
        cp.src_strides[i] = in_strides[i];
        cp.dst_strides[i] = out_strides[i];
      }
      cp.dst_offset = at * out_strides[axis];
      at += x->dims()[axis];
      if (x->numel() > 0) strided_copy(cp, x->data(), a.out[0].data(), ctx.stream);
    }
  });
}

// Gather along axis 0 with int64 indices: rows of the data copied as bytes (embeddings).
std::unique_ptr<GpuKernel> make_gather(const GpuPrepareContext& c) {
  if (c.node.attr_int("axis", 0) != 0) return nullptr;
  if (!c.input_types[1] || c.input_types[1]->elem != DType::I64) return nullptr;
  if (c.input_rank(0) < 1) return nullptr;
  return std::make_unique<LambdaGpuKernel>("cuda.gather", [](GpuRunContext& ctx, GpuArgs& a) {
    const DeviceBuffer& data = *a.in[0];
    const DeviceBuffer& ids = *a.in[1];
    const int64_t vocab = data.dims()[0];
    const int64_t row = vocab == 0 ? 0 : data.numel() / vocab;
    Dims out = ids.dims();
    out.insert(out.end(), data.dims().begin() + 1, data.dims().end());
    a.out[0] = ctx.alloc.allocate(data.dtype(), out);
    embedding_gather(data.dtype(), data.data(), vocab, row, ids.data_as<int64_t>(), ids.numel(),
                     a.out[0].data(), ctx.stream);
  });
}

std::unique_ptr<GpuKernel> make_cast(const GpuPrepareContext& c) {
  const DType from = c.device_dtype(0);
  const auto to_attr = static_cast<int>(c.node.attr_int("to", 0));
  const DType to = c.device_dtype_of(static_cast<DType>(to_attr));
  if (!cast_supported(from) || !cast_supported(to)) return nullptr;
  return std::make_unique<LambdaGpuKernel>("cuda.cast", [to](GpuRunContext& ctx, GpuArgs& a) {
    const DeviceBuffer& x = *a.in[0];
    if (x.dtype() == to) {
      a.out[0] = x;
      return;
    }
    a.out[0] = ctx.alloc.allocate(to, x.dims());
    cast(x.dtype(), to, x.data(), a.out[0].data(), x.numel(), ctx.stream);
  });
}

}  // namespace

KPT_REGISTER_GPU_KERNEL("", "Reshape", make_reshape);
KPT_REGISTER_GPU_KERNEL("", "Flatten", make_flatten);
KPT_REGISTER_GPU_KERNEL("", "Squeeze", make_squeeze);
KPT_REGISTER_GPU_KERNEL("", "Unsqueeze", make_unsqueeze);
KPT_REGISTER_GPU_KERNEL("", "Identity", make_identity);
KPT_REGISTER_GPU_KERNEL("", "Transpose", make_transpose);
KPT_REGISTER_GPU_KERNEL("", "Slice", make_slice);
KPT_REGISTER_GPU_KERNEL("", "Concat", make_concat);
KPT_REGISTER_GPU_KERNEL("", "Gather", make_gather);
KPT_REGISTER_GPU_KERNEL("", "Cast", make_cast);

}  // namespace kpt::cuda
