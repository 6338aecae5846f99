// Convolutions and pooling on the GPU against the CPU reference kernels: conv2d (every method:
// direct, aligned copy, auto; im2col in chunks of one image) over ResNet's window
// shapes and odd ones, with bias, residual and ReLU combinations, in f32, f16 and bf16; the
// registered adapters (Conv, FusedConv, MaxPool, AveragePool, GlobalAveragePool) through the
// GPU kernel registry, as the executor prepares them.
#include <algorithm>
#include <memory>

#include "backends/cuda/conv2d.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/gpu_kernel.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace kpt::gpu_test {
namespace {

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16};

// Outputs are rounded to the type; the reference computes in double from the same values.
double tol(DType dt) {
  return dt == DType::F32 ? 1e-5 : (dt == DType::F16 ? 2e-3 : 1e-2);
}

cuda::CublasLtGemm& lt() {
  static cuda::CublasLtGemm g;
  return g;
}

// Pool memory on the tests' stream, as the executor's eager allocator hands out, filled with
// NaN bytes so that an output element a kernel does not write fails the comparison.
class TestAllocator final : public cuda::RunAllocator {
 public:
  cuda::DeviceBuffer allocate(DType dtype, Dims dims) override {
    return gpu().poisoned(dtype, dims);
  }
};

struct ConvCase {
  const char* what;
  int64_t n, cin, h, w, cout, kh, kw, stride, pad, dilation;
};

// ResNet-50's windows (at reduced spatial size) and a few others.
const ConvCase kCases[] = {
    {"1x1", 3, 64, 14, 14, 256, 1, 1, 1, 0, 1},
    {"1x1 plane 7x7", 4, 128, 7, 7, 64, 1, 1, 1, 0, 1},
    {"3x3 pad 1", 2, 32, 14, 14, 48, 3, 3, 1, 1, 1},
    {"7x7 stride 2 pad 3", 2, 3, 32, 32, 64, 7, 7, 2, 3, 1},
    {"1x1 stride 2", 2, 64, 14, 14, 128, 1, 1, 2, 0, 1},
    {"3x3 stride 2 pad 1", 3, 16, 15, 15, 32, 3, 3, 2, 1, 1},
    {"3x3 dilation 2 pad 2, 13x11", 2, 16, 13, 11, 24, 3, 3, 1, 2, 2},
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - ((k - 1) * d + 1)) / s + 1;
}

cuda::Window2d window_of(const ConvCase& c) {
  cuda::Window2d w;
  w.channels = c.cin;
  w.in_h = c.h;
  w.in_w = c.w;
  w.kernel_h = c.kh;
  w.kernel_w = c.kw;
  w.stride_h = w.stride_w = c.stride;
  w.dilation_h = w.dilation_w = c.dilation;
  w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = c.pad;
  w.out_h = out_size(c.h, c.kh, c.stride, c.pad, c.dilation);
  w.out_w = out_size(c.w, c.kw, c.stride, c.pad, c.dilation);
  return w;
}

std::map<std::string, ir::Attribute> conv_attrs(const ConvCase& c) {
  auto ints = [](const std::string& n, std::vector<int64_t> v) {
    return ir::Attribute::of_ints(n, std::move(v));
  };
  return {{"strides", ints("strides", {c.stride, c.stride})},
          {"pads", ints("pads", {c.pad, c.pad, c.pad, c.pad})},
          {"dilations", ints("dilations", {c.dilation, c.dilation})}};
}

// act(conv + bias + residual) on the host from the reference Conv (f32, same input values).
Tensor expected(const Tensor& conv_bias, const Tensor* residual, bool relu) {
  Tensor y = conv_bias.clone();
  float* p = y.data<float>();
  const Tensor r = residual ? to_f32(*residual) : Tensor();
  for (int64_t i = 0; i < y.numel(); ++i) {
    float v = p[i] + (residual ? r.data<float>()[i] : 0.0f);
    p[i] = relu ? std::max(v, 0.0f) : v;
  }
  return y;
}

struct Fusion {
  bool bias, residual, relu;
};
const Fusion kFusions[] = {{true, false, false},
                           {true, false, true},
                           {true, true, true},
                           {false, false, true},
                           {false, true, false}};

std::string describe(const ConvCase& c, DType dt, Fusion f, cuda::ConvMethod method) {
  std::string s = std::string(c.what) + " " + std::string(dtype_name(dt));
  if (f.bias) s += " +bias";
  if (f.residual) s += " +residual";
  if (f.relu) s += " +relu";
  return s + " (" + cuda::to_string(method) + ")";
}

TEST(CudaConv, MatchesReferenceForEveryWindowFusionAndPrecision) {
  auto& g = gpu();
  TestAllocator alloc;
  int compared = 0;
  for (const ConvCase& c : kCases)
    for (DType dt : kTypes) {
      const cuda::Window2d win = window_of(c);
      const Dims out{c.n, c.cout, win.out_h, win.out_w};
      const float wscale = 1.0f / std::sqrt(static_cast<float>(c.cin * c.kh * c.kw));
      const Tensor x = random_tensor(dt, {c.n, c.cin, c.h, c.w});
      const Tensor w = random_tensor(dt, {c.cout, c.cin, c.kh, c.kw}, -wscale, wscale);
      const Tensor b = random_tensor(dt, {c.cout}, -0.5f, 0.5f);
      const Tensor z = random_tensor(dt, out);
      const Tensor conv = reference("Conv", 11, {to_f32(x), to_f32(w)}, 1, conv_attrs(c))[0];
      const Tensor conv_b =
          reference("Conv", 11, {to_f32(x), to_f32(w), to_f32(b)}, 1, conv_attrs(c))[0];
      const auto dx = g.upload(x), dw = g.upload(w), db = g.upload(b), dz = g.upload(z);
      for (Fusion f : kFusions)
        for (cuda::ConvMethod method :
             {cuda::ConvMethod::Direct, cuda::ConvMethod::AlignedCopy, cuda::ConvMethod::Auto}) {
          auto dy = g.poisoned(dt, out);
          cuda::Conv2dArgs a;
          a.dtype = dt;
          a.images = c.n;
          a.out_channels = c.cout;
          a.window = win;
          a.x = dx.data();
          a.weight = dw.data();
          a.bias = f.bias ? db.data() : nullptr;
          a.residual = f.residual ? dz.data() : nullptr;
          a.y = dy.data();
          a.relu = f.relu;
          // One image per col chunk: the chunk loop runs.
          a.workspace_bytes = 1;
          cuda::conv2d(lt(), alloc, a, g.stream.get(), method);
          const Tensor want = expected(f.bias ? conv_b : conv, f.residual ? &z : nullptr, f.relu);
          expect_close(g.download(dy), want, tol(dt), describe(c, dt, f, method));
          ++compared;
        }
    }
  std::printf("conv2d: %d comparisons\n", compared);
}

// --- the adapters, prepared through the registry -------------------------------------------

ir::Type type_of(const Tensor& t) {
  ir::Shape s;
  for (int64_t d : t.dims()) s.push_back(ir::Dim::of(d));
  return ir::Type::tensor(t.dtype(), s);
}

// What the planner hands a factory for `node` with inputs of `types` (nothing constant or
// host-known), values stored as `dt`.
cuda::GpuPrepareContext context_for(const ir::Node& node, const std::vector<ir::Type>& types,
                                    DType dt) {
  std::vector<const ir::Type*> in;
  for (const ir::Type& t : types) in.push_back(&t);
  return cuda::GpuPrepareContext{.node = node,
                                 .input_types = in,
                                 .output_types = {nullptr},
                                 .constants = std::vector<const Tensor*>(types.size(), nullptr),
                                 .host_known = std::vector<bool>(types.size(), false),
                                 .float_dtype = dt,
                                 .seq_major_inputs = {}};
}

// Prepares `node` on the GPU for inputs of `dt` and runs it; fails when no kernel takes it.
Tensor run_adapter(const ir::Node& node, const std::vector<Tensor>& inputs, DType dt) {
  auto& g = gpu();
  std::vector<ir::Type> types;
  for (const Tensor& t : inputs) types.push_back(type_of(t));
  auto kernel = cuda::GpuKernelRegistry::instance().prepare(context_for(node, types, dt));
  if (!kernel) {
    ADD_FAILURE() << node.label() << ": no GPU kernel";
    return {};
  }
  std::vector<cuda::DeviceBuffer> dev;
  for (const Tensor& t : inputs) dev.push_back(g.upload(t));
  TestAllocator alloc;
  cuda::GpuRunContext ctx{g.stream.get(), lt(), alloc};
  cuda::GpuArgs args;
  for (const auto& d : dev) args.in.push_back(&d);
  args.host.assign(inputs.size(), nullptr);
  args.out.resize(node.outputs.size());
  kernel->run(ctx, args);
  return g.download(args.out[0]);
}

ir::Node make_node(const std::string& domain, const std::string& op, size_t inputs, int opset,
                   std::vector<ir::Attribute> attrs) {
  ir::Node n;
  n.name = op;
  n.domain = domain;
  n.op_type = op;
  n.opset = opset;
  for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  n.outputs.push_back("out");
  for (auto& a : attrs) n.attrs[a.name] = std::move(a);
  return n;
}

TEST(CudaConv, FusedConvAdapterMatchesReference) {
  for (DType dt : {DType::F16, DType::BF16}) {
    // A ResNet bottleneck's last convolution: 1x1, bias, residual, ReLU.
    const ConvCase c{"fused 1x1", 2, 64, 8, 8, 128, 1, 1, 1, 0, 1};
    const Tensor x = random_tensor(dt, {c.n, c.cin, c.h, c.w});
    const Tensor w = random_tensor(dt, {c.cout, c.cin, 1, 1}, -0.125f, 0.125f);
    const Tensor b = random_tensor(dt, {c.cout});
    const Tensor z = random_tensor(dt, {c.n, c.cout, c.h, c.w});
    const ir::Node node = make_node("com.microsoft", "FusedConv", 4, 1,
                                    {ir::Attribute::of_string("activation", "Relu")});
    const Tensor got = run_adapter(node, {x, w, b, z}, dt);
    const Tensor conv = reference("Conv", 11, {to_f32(x), to_f32(w), to_f32(b)}, 1, {})[0];
    expect_close(got, expected(conv, &z, true), tol(dt),
                 "FusedConv 1x1+bias+residual+relu " + std::string(dtype_name(dt)));
    // The stem: 7x7 stride 2 pad 3 with ReLU, through plain Conv attributes.
    const Tensor xs = random_tensor(dt, {1, 3, 40, 40});
    const Tensor ws = random_tensor(dt, {16, 3, 7, 7}, -0.1f, 0.1f);
    const Tensor bs = random_tensor(dt, {16});
    const ir::Node stem = make_node(
        "com.microsoft", "FusedConv", 3, 1,
        {ir::Attribute::of_string("activation", "Relu"), ir::Attribute::of_ints("strides", {2, 2}),
         ir::Attribute::of_ints("pads", {3, 3, 3, 3})});
    const Tensor stem_ref = reference("Conv", 11, {to_f32(xs), to_f32(ws), to_f32(bs)}, 1,
                                      conv_attrs({"stem", 1, 3, 40, 40, 16, 7, 7, 2, 3, 1}))[0];
    expect_close(run_adapter(stem, {xs, ws, bs}, dt), expected(stem_ref, nullptr, true), tol(dt),
                 "FusedConv stem " + std::string(dtype_name(dt)));
    // Plain Conv, no bias, asymmetric pads.
    const ir::Node plain =
        make_node("", "Conv", 2, 11, {ir::Attribute::of_ints("pads", {0, 1, 2, 0})});
    const Tensor plain_ref = reference("Conv", 11, {to_f32(xs), to_f32(ws)}, 1,
                                       {{"pads", ir::Attribute::of_ints("pads", {0, 1, 2, 0})}})[0];
    expect_close(run_adapter(plain, {xs, ws}, dt), plain_ref, tol(dt),
                 "Conv asymmetric pads " + std::string(dtype_name(dt)));
  }
}

TEST(CudaConv, UnsupportedConvolutionsGetNoKernel) {
  const Tensor x = random_tensor(DType::F16, {1, 8, 6, 6});
  const Tensor w = random_tensor(DType::F16, {8, 4, 3, 3});
  const ir::Node grouped = make_node("", "Conv", 2, 11, {ir::Attribute::of_int("group", 2)});
  const std::vector<ir::Type> types{type_of(x), type_of(w)};
  EXPECT_EQ(cuda::GpuKernelRegistry::instance().prepare(context_for(grouped, types, DType::F16)),
            nullptr)
      << "groups 2";
  const ir::Node sigmoid = make_node("com.microsoft", "FusedConv", 2, 1,
                                     {ir::Attribute::of_string("activation", "Sigmoid")});
  const Tensor w1 = random_tensor(DType::F16, {8, 8, 3, 3});
  const std::vector<ir::Type> t1{type_of(x), type_of(w1)};
  auto ps = context_for(sigmoid, t1, DType::F16);
  EXPECT_EQ(cuda::GpuKernelRegistry::instance().prepare(ps), nullptr) << "Sigmoid activation";
}

TEST(CudaPool, PoolsMatchReference) {
  for (DType dt : kTypes) {
    const std::string tag = " " + std::string(dtype_name(dt));
    const Tensor x = random_tensor(dt, {2, 5, 17, 14}, -2.0f, 2.0f);
    // ResNet's MaxPool: 3x3 stride 2 pad 1.
    std::vector<ir::Attribute> resnet{ir::Attribute::of_ints("kernel_shape", {3, 3}),
                                      ir::Attribute::of_ints("strides", {2, 2}),
                                      ir::Attribute::of_ints("pads", {1, 1, 1, 1})};
    std::map<std::string, ir::Attribute> resnet_map;
    for (const auto& a : resnet) resnet_map[a.name] = a;
    expect_close(run_adapter(make_node("", "MaxPool", 1, 12, resnet), {x}, dt),
                 reference("MaxPool", 12, {x}, 1, resnet_map)[0], 0.0, "MaxPool 3x3 s2 p1" + tag);
    // ceil_mode with asymmetric pads and dilation.
    std::vector<ir::Attribute> odd{
        ir::Attribute::of_ints("kernel_shape", {2, 3}), ir::Attribute::of_ints("strides", {2, 2}),
        ir::Attribute::of_ints("pads", {0, 1, 1, 0}), ir::Attribute::of_ints("dilations", {1, 2}),
        ir::Attribute::of_int("ceil_mode", 1)};
    std::map<std::string, ir::Attribute> odd_map;
    for (const auto& a : odd) odd_map[a.name] = a;
    expect_close(run_adapter(make_node("", "MaxPool", 1, 12, odd), {x}, dt),
                 reference("MaxPool", 12, {x}, 1, odd_map)[0], 0.0,
                 "MaxPool ceil_mode dilation" + tag);
    for (int include_pad : {0, 1}) {
      std::vector<ir::Attribute> avg{
          ir::Attribute::of_ints("kernel_shape", {3, 3}), ir::Attribute::of_ints("strides", {2, 2}),
          ir::Attribute::of_ints("pads", {1, 0, 1, 1}), ir::Attribute::of_int("ceil_mode", 1),
          ir::Attribute::of_int("count_include_pad", include_pad)};
      std::map<std::string, ir::Attribute> avg_map;
      for (const auto& a : avg) avg_map[a.name] = a;
      expect_close(run_adapter(make_node("", "AveragePool", 1, 11, avg), {x}, dt),
                   reference("AveragePool", 11, {x}, 1, avg_map)[0], tol(dt),
                   "AveragePool count_include_pad " + std::to_string(include_pad) + tag);
    }
    expect_close(run_adapter(make_node("", "GlobalAveragePool", 1, 1, {}), {x}, dt),
                 reference("GlobalAveragePool", 1, {x})[0], tol(dt), "GlobalAveragePool" + tag);
  }
}

}  // namespace
}  // namespace kpt::gpu_test
