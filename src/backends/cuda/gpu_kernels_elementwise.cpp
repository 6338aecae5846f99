// GPU adapters for element-wise and row-wise ops: broadcasting arithmetic, Where, unary math,
// Gelu, Softmax, LayerNormalization, SkipLayerNormalization and ReduceMean over the last axis.
#include "backends/cuda/elementwise.hpp"
#include "backends/cuda/fp8_product.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "backends/cuda/norm.hpp"
#include "backends/cuda/pointwise.hpp"
#include "backends/cuda/reduce.hpp"

namespace kpt::cuda {

namespace {

// Rows and columns of a tensor seen as [rows, last dim].
std::pair<int64_t, int64_t> rows_cols(const Dims& d) {
  const int64_t cols = d.empty() ? 1 : d.back();
  return {cols == 0 ? 0 : element_count(d) / cols, cols};
}

GpuKernelFactory binary_factory(BinaryOp op) {
  return [op](const GpuPrepareContext& c) -> std::unique_ptr<GpuKernel> {
    // Max and Min take any number of inputs; the kernel takes two.
    if (c.node.inputs.size() != 2) return nullptr;
    const DType a = c.device_dtype(0), b = c.device_dtype(1);
    const bool ints = a == DType::I64 || a == DType::I32;
    if (a != b || !(is_kernel_float(a) || (ints && op != BinaryOp::Pow))) return nullptr;
    return std::make_unique<LambdaGpuKernel>("cuda.binary", [op](GpuRunContext& ctx, GpuArgs& g) {
      const Dims* shapes[2] = {&g.in[0]->dims(), &g.in[1]->dims()};
      Dims out;
      const BroadcastLayout l = broadcast_layout(shapes, 2, out);
      g.out[0] = ctx.alloc.allocate(g.in[0]->dtype(), out);
      binary(op, g.in[0]->dtype(), g.in[0]->data(), g.in[1]->data(), g.out[0].data(), l,
             ctx.stream);
    });
  };
}

std::unique_ptr<GpuKernel> make_where(const GpuPrepareContext& c) {
  if (c.device_dtype(0) != DType::Bool || c.device_dtype(1) != c.device_dtype(2)) return nullptr;
  const size_t size = dtype_size(c.device_dtype(1));
  if (size != 1 && size != 2 && size != 4 && size != 8) return nullptr;
  return std::make_unique<LambdaGpuKernel>("cuda.where", [](GpuRunContext& ctx, GpuArgs& g) {
    const Dims* shapes[3] = {&g.in[0]->dims(), &g.in[1]->dims(), &g.in[2]->dims()};
    Dims out;
    const BroadcastLayout l = broadcast_layout(shapes, 3, out);
    g.out[0] = ctx.alloc.allocate(g.in[1]->dtype(), out);
    where(g.in[1]->dtype(), g.in[0]->data(), g.in[1]->data(), g.in[2]->data(), g.out[0].data(), l,
          ctx.stream);
  });
}

GpuKernelFactory unary_factory(UnaryOp op) {
  return [op](const GpuPrepareContext& c) -> std::unique_ptr<GpuKernel> {
    if (!is_kernel_float(c.device_dtype(0))) return nullptr;
    return std::make_unique<LambdaGpuKernel>("cuda.unary", [op](GpuRunContext& ctx, GpuArgs& g) {
      const DeviceBuffer& x = *g.in[0];
      g.out[0] = ctx.alloc.allocate(x.dtype(), x.dims());
      unary(op, x.dtype(), x.data(), g.out[0].data(), x.numel(), ctx.stream);
    });
  };
}

std::unique_ptr<GpuKernel> make_gelu(const GpuPrepareContext& c) {
  if (!is_kernel_float(c.device_dtype(0))) return nullptr;
  const bool tanh_approx = c.node.attr_string("approximate", "none") == "tanh";
  return std::make_unique<LambdaGpuKernel>(
      "cuda.gelu", [tanh_approx](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const auto [rows, cols] = rows_cols(x.dims());
        g.out[0] = ctx.alloc.allocate(x.dtype(), x.dims());
        gelu(x.dtype(), x.data(), nullptr, g.out[0].data(), rows, cols, tanh_approx, ctx.stream);
      });
}

std::unique_ptr<GpuKernel> make_softmax(const GpuPrepareContext& c) {
  const int64_t rank = c.input_rank(0);
  if (!is_kernel_float(c.device_dtype(0)) || rank < 1) return nullptr;
  const int64_t axis = c.node.attr_int("axis", c.node.opset >= 13 ? -1 : 1);
  if (axis != -1 && axis != rank - 1) return nullptr;
  return std::make_unique<LambdaGpuKernel>("cuda.softmax", [](GpuRunContext& ctx, GpuArgs& g) {
    const DeviceBuffer& x = *g.in[0];
    const auto [rows, cols] = rows_cols(x.dims());
    g.out[0] = ctx.alloc.allocate(x.dtype(), x.dims());
    softmax(x.dtype(), x.data(), g.out[0].data(), rows, cols, ctx.stream);
  });
}

// Only the first output of a norm node may be used (Mean and InvStdDev are not computed).
bool only_first_output(const ir::Node& node, size_t also_allowed = 0) {
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (!node.outputs[i].empty() && i != also_allowed) return false;
  }
  return true;
}

// FP8 plan fusion: a norm that also writes its output in e4m3 for the FP8 product reading it,
// into the run's derived buffers (fp8_product.hpp), once that product quantizes its input.
struct E4m3Copy {
  const Fp8ProductKernel* reader = nullptr;
  int value = -1;
  explicit E4m3Copy(const GpuPrepareContext& c) : reader(c.fp8_reader), value(c.output_value) {}
  std::string tag() const { return reader ? "(+e4m3 copy)" : ""; }
  void attach(GpuRunContext& ctx, const DeviceBuffer& y, NormArgs& n) const {
    if (!reader || !reader->quantizes_input() || !ctx.derived || value < 0) return;
    DeviceBuffer q = ctx.alloc.allocate(DType::F8E4M3FN, y.dims());
    n.y_e4m3 = q.data();
    n.y_e4m3_inverse_scale = reader->input_inverse_scale();
    ctx.derived->emplace(Fp8ProductKernel::fp8_copy_key(value), std::move(q));
  }
};

std::unique_ptr<GpuKernel> make_layer_norm(const GpuPrepareContext& c) {
  const int64_t rank = c.input_rank(0);
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || rank < 1 || !only_first_output(c.node)) return nullptr;
  const int64_t axis = c.node.attr_int("axis", -1);
  if (axis != -1 && axis != rank - 1) return nullptr;
  if (c.device_dtype(1) != dt || (c.has_input(2) && c.device_dtype(2) != dt)) return nullptr;
  const float eps = c.node.attr_float("epsilon", 1e-5f);
  const E4m3Copy e4m3(c);
  return std::make_unique<LambdaGpuKernel>(
      "cuda.layer_norm" + e4m3.tag(), [eps, e4m3](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const auto [rows, cols] = rows_cols(x.dims());
        g.out[0] = ctx.alloc.allocate(x.dtype(), x.dims());
        NormArgs n;
        n.dtype = x.dtype();
        n.rows = rows;
        n.cols = cols;
        n.x = x.data();
        n.gamma = g.in[1]->data();
        n.beta = g.in.size() > 2 && g.in[2] ? g.in[2]->data() : nullptr;
        n.y = g.out[0].data();
        n.epsilon = eps;
        e4m3.attach(ctx, g.out[0], n);
        layer_norm(n, ctx.stream);
      });
}

// com.microsoft.SkipLayerNormalization: y = LN(x + skip + bias); output 3 is the sum.
std::unique_ptr<GpuKernel> make_skip_layer_norm(const GpuPrepareContext& c) {
  const DType dt = c.device_dtype(0);
  if (!is_kernel_float(dt) || !only_first_output(c.node, 3) || c.device_dtype(1) != dt)
    return nullptr;
  const auto& ti = c.input_types[0];
  const auto& ts = c.input_types[1];
  if (!ti || !ts || !ti->shape || !ts->shape || *ti->shape != *ts->shape) return nullptr;
  const float eps = c.node.attr_float("epsilon", 1e-12f);
  const bool want_sum = c.node.outputs.size() > 3 && !c.node.outputs[3].empty();
  const E4m3Copy e4m3(c);
  return std::make_unique<LambdaGpuKernel>(
      "cuda.skip_layer_norm" + e4m3.tag(), [eps, want_sum, e4m3](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        if (g.in[1]->dims() != x.dims())
          throw Error("SkipLayerNormalization on the GPU: skip " + g.in[1]->describe() +
                      " must have the input's shape " + x.describe());
        const auto [rows, cols] = rows_cols(x.dims());
        g.out[0] = ctx.alloc.allocate(x.dtype(), x.dims());
        NormArgs n;
        n.dtype = x.dtype();
        n.rows = rows;
        n.cols = cols;
        n.x = x.data();
        n.skip = g.in[1]->data();
        n.gamma = g.in[2]->data();
        n.beta = g.in.size() > 3 && g.in[3] ? g.in[3]->data() : nullptr;
        n.bias = g.in.size() > 4 && g.in[4] ? g.in[4]->data() : nullptr;
        n.y = g.out[0].data();
        if (want_sum) {
          g.out[3] = ctx.alloc.allocate(x.dtype(), x.dims());
          n.sum = g.out[3].data();
        }
        n.epsilon = eps;
        e4m3.attach(ctx, g.out[0], n);
        skip_layer_norm(n, ctx.stream);
      });
}

// ReduceMean over the last axis only (axes from the attribute, or a host input from opset 18).
std::unique_ptr<GpuKernel> make_reduce_mean(const GpuPrepareContext& c) {
  const int64_t rank = c.input_rank(0);
  if (!is_kernel_float(c.device_dtype(0)) || rank < 1) return nullptr;
  std::vector<int64_t> axes = c.node.attr_ints("axes");
  if (c.has_input(1)) {
    if (!c.constants[1]) return nullptr;
    axes = c.constants[1]->to_i64_vector();
  }
  if (axes.size() != 1 || (axes[0] != -1 && axes[0] != rank - 1)) return nullptr;
  const bool keep = c.node.attr_int("keepdims", 1) != 0;
  return std::make_unique<LambdaGpuKernel>(
      "cuda.reduce_mean",
      [keep](GpuRunContext& ctx, GpuArgs& g) {
        const DeviceBuffer& x = *g.in[0];
        const auto [rows, cols] = rows_cols(x.dims());
        Dims out = x.dims();
        if (keep) {
          out.back() = 1;
        } else {
          out.pop_back();
        }
        g.out[0] = ctx.alloc.allocate(x.dtype(), out);
        row_mean(x.dtype(), x.data(), g.out[0].data(), rows, cols, ctx.stream);
      },
      std::vector<bool>{false, true});
}

}  // namespace

KPT_REGISTER_GPU_KERNEL("", "Add", binary_factory(BinaryOp::Add));
KPT_REGISTER_GPU_KERNEL("", "Sub", binary_factory(BinaryOp::Sub));
KPT_REGISTER_GPU_KERNEL("", "Mul", binary_factory(BinaryOp::Mul));
KPT_REGISTER_GPU_KERNEL("", "Div", binary_factory(BinaryOp::Div));
KPT_REGISTER_GPU_KERNEL("", "Pow", binary_factory(BinaryOp::Pow));
KPT_REGISTER_GPU_KERNEL("", "Max", binary_factory(BinaryOp::Max));
KPT_REGISTER_GPU_KERNEL("", "Min", binary_factory(BinaryOp::Min));
KPT_REGISTER_GPU_KERNEL("", "Where", make_where);
KPT_REGISTER_GPU_KERNEL("", "Erf", unary_factory(UnaryOp::Erf));
KPT_REGISTER_GPU_KERNEL("", "Tanh", unary_factory(UnaryOp::Tanh));
KPT_REGISTER_GPU_KERNEL("", "Sqrt", unary_factory(UnaryOp::Sqrt));
KPT_REGISTER_GPU_KERNEL("", "Relu", unary_factory(UnaryOp::Relu));
KPT_REGISTER_GPU_KERNEL("", "Sigmoid", unary_factory(UnaryOp::Sigmoid));
KPT_REGISTER_GPU_KERNEL("", "Exp", unary_factory(UnaryOp::Exp));
KPT_REGISTER_GPU_KERNEL("", "Log", unary_factory(UnaryOp::Log));
KPT_REGISTER_GPU_KERNEL("", "Neg", unary_factory(UnaryOp::Neg));
KPT_REGISTER_GPU_KERNEL("", "Abs", unary_factory(UnaryOp::Abs));
KPT_REGISTER_GPU_KERNEL("", "Reciprocal", unary_factory(UnaryOp::Reciprocal));
KPT_REGISTER_GPU_KERNEL("", "Gelu", make_gelu);
KPT_REGISTER_GPU_KERNEL("", "Softmax", make_softmax);
KPT_REGISTER_GPU_KERNEL("", "LayerNormalization", make_layer_norm);
KPT_REGISTER_GPU_KERNEL("com.microsoft", "SkipLayerNormalization", make_skip_layer_norm);
KPT_REGISTER_GPU_KERNEL("", "ReduceMean", make_reduce_mean);

}  // namespace kpt::cuda
