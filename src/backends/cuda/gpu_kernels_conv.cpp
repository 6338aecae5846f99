// GPU adapters for convolutional networks: Conv and com.microsoft.FusedConv (bias, residual Z
// and ReLU fused; conv2d.hpp), MaxPool, AveragePool and GlobalAveragePool. 2D NCHW only; groups
// other than 1, other activations, MaxPool's Indices output and other ranks stay on the CPU.
#include <utility>

#include "backends/cuda/conv.hpp"
#include "backends/cuda/conv2d.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "backends/cuda/reduce.hpp"
#include "ops/vision/vision_util.hpp"

namespace kpt::cuda {

namespace {

// The node's window over input dims `x` (N, C, H, W) with kernel `kernel`, by the CPU kernels'
// own geometry (auto_pad, ceil_mode, dilations).
Window2d window_of(const ir::Node& node, const Dims& x, std::vector<int64_t> kernel,
                   bool ceil_mode) {
  if (x.size() != 4)
    throw Error(node.label() + ": the GPU kernel takes N x C x H x W input, got " +
                dims_to_string(x));
  std::vector<Value> no_outputs;
  const ops::KernelContext ctx(node, {}, no_outputs, nullptr);
  const ops::vision::Window w =
      ops::vision::make_window(ctx, Dims{x[2], x[3]}, std::move(kernel), ceil_mode);
  Window2d r;
  r.channels = x[1];
  r.in_h = x[2];
  r.in_w = x[3];
  r.out_h = w.out[0];
  r.out_w = w.out[1];
  r.kernel_h = w.kernel[0];
  r.kernel_w = w.kernel[1];
  r.stride_h = w.strides[0];
  r.stride_w = w.strides[1];
  r.dilation_h = w.dilations[0];
  r.dilation_w = w.dilations[1];
  r.pad_top = w.pads[0];
  r.pad_left = w.pads[1];
  r.pad_bottom = w.pads[2];
  r.pad_right = w.pads[3];
  return r;
}

bool only_output_zero(const GpuPrepareContext& c) {
  for (size_t i = 1; i < c.node.outputs.size(); ++i) {
    if (!c.node.outputs[i].empty()) return false;
  }
  return true;
}

// Conv(X, W, B) and FusedConv(X, W, B, Z) with activation "" or "Relu".
std::unique_ptr<GpuKernel> make_conv(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || c.device_dtype(1) != dt) return nullptr;
  if (c.input_rank(0) != 4 || c.input_rank(1) != 4 || !only_output_zero(c)) return nullptr;
  if (c.node.attr_int("group", 1) != 1) return nullptr;
  const bool has_bias = c.has_input(2);
  const bool has_residual = c.has_input(3);
  if ((has_bias && c.device_dtype(2) != dt) || (has_residual && c.device_dtype(3) != dt))
    return nullptr;
  const std::string act = c.node.attr_string("activation", "");
  if (!act.empty() && act != "Relu") return nullptr;
  const bool relu = act == "Relu";
  // For the name only: whether the weight's inferred shape makes it a plain GEMM.
  bool direct = false;
  if (const ir::Type* wt = c.input_types[1];
      wt && wt->shape && (*wt->shape)[2].known() && (*wt->shape)[3].known()) {
    const std::vector<int64_t> ones{1, 1};
    direct = (*wt->shape)[2].value == 1 && (*wt->shape)[3].value == 1 &&
             c.node.attr_ints("strides", ones) == ones &&
             c.node.attr_ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{0, 0, 0, 0};
  }
  std::string name = "cuda.conv(" + dtype_tag(dt) + (direct ? ", gemm" : ", im2col+gemm");
  if (has_bias) name += "+bias";
  if (has_residual) name += "+residual";
  if (relu) name += "+Relu";
  name += ")";
  return std::make_unique<LambdaGpuKernel>(
      name, [node = c.node, has_bias, has_residual, relu](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const DeviceBuffer& w = *g.in[1];
        const Dims& wd = w.dims();
        if (wd.size() != 4 || x.dims().size() != 4 || x.dims()[1] != wd[1])
          throw Error(node.label() + ": input " + x.describe() + " and weight " + w.describe() +
                      " do not match (expected N x C x H x W and Cout x C x KH x KW)");
        Conv2dArgs a;
        a.dtype = x.dtype();
        a.images = x.dims()[0];
        a.out_channels = wd[0];
        a.window = window_of(node, x.dims(), {wd[2], wd[3]}, false);
        const Dims out{a.images, a.out_channels, a.window.out_h, a.window.out_w};
        if (has_bias) {
          if (g.in[2]->numel() != a.out_channels)
            throw Error(node.label() + ": bias " + g.in[2]->describe() + " must have " +
                        std::to_string(a.out_channels) + " values");
          a.bias = g.in[2]->data();
        }
        if (has_residual) {
          if (g.in[3]->dims() != out)
            throw Error(node.label() + ": Z " + g.in[3]->describe() + " must have the shape " +
                        dims_to_string(out));
          a.residual = g.in[3]->data();
        }
        g.out[0] = ctx.alloc.allocate(a.dtype, out);
        a.x = x.data();
        a.weight = w.data();
        a.y = g.out[0].data();
        a.relu = relu;
        conv2d(ctx.gemm, ctx.alloc, a, ctx.stream);
      });
}

bool pool_input_ok(const GpuPrepareContext& c) {
  return is_kernel_float(c.device_dtype(0)) && c.input_rank(0) == 4 && only_output_zero(c);
}

std::unique_ptr<GpuKernel> make_pool(const GpuPrepareContext& c, bool max) {
  if (!pool_input_ok(c)) return nullptr;
  const std::vector<int64_t> kernel = c.node.attr_ints("kernel_shape");
  if (kernel.size() != 2) return nullptr;
  const bool ceil_mode = c.node.attr_int("ceil_mode", 0) != 0;
  const bool include_pad = c.node.attr_int("count_include_pad", 0) != 0;
  const std::string dt = dtype_tag(c.device_dtype(0));
  return std::make_unique<LambdaGpuKernel>(
      std::string(max ? "cuda.max_pool(" : "cuda.avg_pool(") + dt + ")",
      [node = c.node, kernel, ceil_mode, include_pad, max](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const Window2d w = window_of(node, x.dims(), kernel, ceil_mode);
        const int64_t images = x.dims()[0];
        g.out[0] = ctx.alloc.allocate(x.dtype(), {images, w.channels, w.out_h, w.out_w});
        if (max) {
          max_pool2d(x.dtype(), x.data(), g.out[0].data(), images, w, ctx.stream);
        } else {
          avg_pool2d(x.dtype(), x.data(), g.out[0].data(), images, w, include_pad, ctx.stream);
        }
      });
}

std::unique_ptr<GpuKernel> make_global_average_pool(const GpuPrepareContext& c) {
  if (!is_kernel_float(c.device_dtype(0)) || c.input_rank(0) < 3) return nullptr;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.global_avg_pool(" + dtype_tag(c.device_dtype(0)) + ")",
      [](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const Dims& d = x.dims();
        Dims out(d.size(), 1);
        out[0] = d[0];
        out[1] = d[1];
        const int64_t rows = d[0] * d[1];
        g.out[0] = ctx.alloc.allocate(x.dtype(), out);
        if (rows == 0) return;
        row_mean(x.dtype(), x.data(), g.out[0].data(), rows, x.numel() / rows, ctx.stream);
      });
}

}  // namespace

KPT_REGISTER_GPU_KERNEL("", "Conv", make_conv);
KPT_REGISTER_GPU_KERNEL("com.microsoft", "FusedConv", make_conv);
KPT_REGISTER_GPU_KERNEL("", "MaxPool",
                        [](const GpuPrepareContext& c) { return make_pool(c, true); });
KPT_REGISTER_GPU_KERNEL("", "AveragePool",
                        [](const GpuPrepareContext& c) { return make_pool(c, false); });
KPT_REGISTER_GPU_KERNEL("", "GlobalAveragePool", make_global_average_pool);

}  // namespace kpt::cuda
