// Fast float32 MaxPool, AveragePool (2-D, NCHW) and GlobalAveragePool / GlobalMaxPool. A
// rectangular window clipped to the input is separable: each output row first reduces the
// window's input rows elementwise (contiguous, vectorizable), then reduces that row's
// horizontal windows. Planes (batch x channel) run in parallel. Dilated windows and MaxPool's
// Indices output go to the reference kernels.
#include <algorithm>
#include <limits>
#include <vector>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/parallel.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

struct Axis {
  int64_t kernel, stride, pad_begin, pad_end;
};

struct PoolSpec {
  bool max = true;
  bool ceil_mode = false;
  bool count_include_pad = false;
  std::string auto_pad;
  Axis h, w;
};

// Output length of one axis as the ONNX pools define it; -1 when the window does not fit.
int64_t out_len(int64_t in, Axis& a, const std::string& auto_pad, bool ceil_mode) {
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t o = (in + a.stride - 1) / a.stride;
    const int64_t total = std::max<int64_t>(0, (o - 1) * a.stride + a.kernel - in);
    a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    a.pad_end = total - a.pad_begin;
    return o;
  }
  if (auto_pad == "VALID") a.pad_begin = a.pad_end = 0;
  const int64_t span = in + a.pad_begin + a.pad_end - a.kernel;
  if (span < 0) return -1;
  if (!ceil_mode) return span / a.stride + 1;
  int64_t o = (span + a.stride - 1) / a.stride + 1;
  // The last window must start inside the input or its begin padding.
  if ((o - 1) * a.stride >= in + a.pad_begin) --o;
  return o;
}

// Input range [lo, hi) of output position o, and how many positions of the padded input the
// window covers (AveragePool's count_include_pad divisor).
struct Range {
  int64_t lo, hi, padded;
};
Range window(int64_t o, const Axis& a, int64_t in) {
  const int64_t start = o * a.stride - a.pad_begin, end = start + a.kernel;
  const int64_t padded = std::min(end, in + a.pad_end) - std::max(start, -a.pad_begin);
  return {std::max<int64_t>(start, 0), std::min(end, in), padded};
}

class Pool2d : public ops::Kernel {
 public:
  explicit Pool2d(PoolSpec s) : s_(std::move(s)) {}
  std::string name() const override { return s_.max ? "cpu.maxpool" : "cpu.avgpool"; }

  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::F32 || x.rank() != 4 || ctx.wants_output(1)) {
      ops::run_reference(ctx);
      return;
    }
    Axis ah = s_.h, aw = s_.w;
    const int64_t ih = x.dim(2), iw = x.dim(3);
    const int64_t oh = out_len(ih, ah, s_.auto_pad, s_.ceil_mode);
    const int64_t ow = out_len(iw, aw, s_.auto_pad, s_.ceil_mode);
    if (oh < 0 || ow < 0 || x.numel() == 0) {
      ops::run_reference(ctx);  // reports the error
      return;
    }
    std::vector<Range> rows(static_cast<size_t>(oh)), cols(static_cast<size_t>(ow));
    for (int64_t o = 0; o < oh; ++o) rows[static_cast<size_t>(o)] = window(o, ah, ih);
    for (int64_t o = 0; o < ow; ++o) cols[static_cast<size_t>(o)] = window(o, aw, iw);
    Tensor y = ctx.allocate_output(0, DType::F32, {x.dim(0), x.dim(1), oh, ow});
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
    const bool max = s_.max, include_pad = s_.count_include_pad;
    parallel_for(x.dim(0) * x.dim(1), 4, [&](int64_t begin, int64_t end) {
      std::vector<float> line(static_cast<size_t>(iw));
      for (int64_t p = begin; p < end; ++p) {
        const float* plane = xp + p * ih * iw;
        float* out = yp + p * oh * ow;
        for (int64_t r = 0; r < oh; ++r) {
          const Range& rr = rows[static_cast<size_t>(r)];
          reduce_rows(plane, iw, rr, max, line.data());
          for (int64_t c = 0; c < ow; ++c) {
            const Range& cr = cols[static_cast<size_t>(c)];
            float v = max ? -std::numeric_limits<float>::infinity() : 0.f;
            for (int64_t k = cr.lo; k < cr.hi; ++k)
              v = max ? std::max(v, line[static_cast<size_t>(k)])
                      : v + line[static_cast<size_t>(k)];
            if (!max) {
              const int64_t count =
                  include_pad ? rr.padded * cr.padded : (rr.hi - rr.lo) * (cr.hi - cr.lo);
              v = count > 0 ? v / static_cast<float>(count) : 0.f;
            }
            out[r * ow + c] = v;
          }
        }
      }
    });
    ctx.set_output(0, y);
  }

 private:
  // line[k] = max (or sum) over input rows [rr.lo, rr.hi) of column k.
  static void reduce_rows(const float* plane, int64_t iw, const Range& rr, bool max, float* line) {
    if (rr.hi <= rr.lo) {
      std::fill(line, line + iw, max ? -std::numeric_limits<float>::infinity() : 0.f);
      return;
    }
    std::copy(plane + rr.lo * iw, plane + (rr.lo + 1) * iw, line);
    for (int64_t i = rr.lo + 1; i < rr.hi; ++i) {
      const float* row = plane + i * iw;
      if (max) {
        for (int64_t k = 0; k < iw; ++k) line[k] = std::max(line[k], row[k]);
      } else {
        for (int64_t k = 0; k < iw; ++k) line[k] += row[k];
      }
    }
  }

  PoolSpec s_;
};

std::unique_ptr<ops::Kernel> prepare_pool(const PrepareContext& ctx) {
  const ir::Node& n = ctx.node;
  const ir::Type* t = ctx.input_types.empty() ? nullptr : ctx.input_types[0];
  if (!t || t->kind != ir::Type::Kind::Tensor || t->elem != DType::F32) return nullptr;
  if (!t->shape || t->shape->size() != 4) return nullptr;
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) return nullptr;  // MaxPool Indices
  const auto kernel = n.attr_ints("kernel_shape");
  const auto strides = n.attr_ints("strides", {1, 1});
  const auto pads = n.attr_ints("pads", {0, 0, 0, 0});
  const auto dilations = n.attr_ints("dilations", {1, 1});
  if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 4) return nullptr;
  if (dilations != std::vector<int64_t>{1, 1}) return nullptr;
  if (n.attr_int("storage_order", 0) != 0) return nullptr;
  for (int i = 0; i < 2; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || pads[i] < 0 || pads[i + 2] < 0) return nullptr;
  }
  PoolSpec s;
  s.max = n.op_type == "MaxPool";
  s.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  s.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  s.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (s.auto_pad != "NOTSET" && !s.auto_pad.empty() && s.auto_pad != "VALID" &&
      s.auto_pad != "SAME_UPPER" && s.auto_pad != "SAME_LOWER")
    return nullptr;
  s.h = {kernel[0], strides[0], pads[0], pads[2]};
  s.w = {kernel[1], strides[1], pads[1], pads[3]};
  return std::make_unique<Pool2d>(s);
}

class GlobalPool : public ops::Kernel {
 public:
  explicit GlobalPool(bool max) : max_(max) {}
  std::string name() const override { return max_ ? "cpu.global_maxpool" : "cpu.global_avgpool"; }

  void run(ops::KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::F32 || x.rank() < 3 || x.numel() == 0) {
      ops::run_reference(ctx);
      return;
    }
    const int64_t planes = x.dim(0) * x.dim(1), size = x.numel() / planes;
    Dims dims = x.dims();
    for (size_t d = 2; d < dims.size(); ++d) dims[d] = 1;
    Tensor y = ctx.allocate_output(0, DType::F32, dims);
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
    const bool max = max_;
    parallel_for(planes, std::max<int64_t>(1, 4096 / size), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        yp[p] =
            max ? plane_max(xp + p * size, size)
                : static_cast<float>(plane_sum(xp + p * size, size) / static_cast<double>(size));
    });
    ctx.set_output(0, y);
  }

 private:
  // Sixteen independent partial sums: vectorizable without reassociating one chain.
  static double plane_sum(const float* v, int64_t n) {
    float acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += v[i + j];
    double s = 0;
    for (float a : acc) s += a;
    for (; i < n; ++i) s += v[i];
    return s;
  }
  static float plane_max(const float* v, int64_t n) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::max(m, v[i]);
    return m;
  }

  bool max_;
};

std::unique_ptr<ops::Kernel> prepare_global_pool(const PrepareContext& ctx) {
  const ir::Type* t = ctx.input_types.empty() ? nullptr : ctx.input_types[0];
  if (!t || t->kind != ir::Type::Kind::Tensor || t->elem != DType::F32) return nullptr;
  return std::make_unique<GlobalPool>(ctx.node.op_type == "GlobalMaxPool");
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "MaxPool", prepare_pool);
KPT_REGISTER_CPU_KERNEL("", "AveragePool", prepare_pool);
KPT_REGISTER_CPU_KERNEL("", "GlobalAveragePool", prepare_global_pool);
KPT_REGISTER_CPU_KERNEL("", "GlobalMaxPool", prepare_global_pool);

}  // namespace kpt::cpu
