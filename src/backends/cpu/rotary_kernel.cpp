// Float32 RotaryEmbedding (opset 23): the same rotation as the reference kernel, in float,
// parallel over (batch, sequence) rows, without widening the whole tensor to double. Anything
// unusual (other dtypes, a cache or position ids that do not fit) runs the reference kernel,
// which also words the error.
#include <memory>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/parallel.hpp"
#include "ops/run_node.hpp"

namespace kpt::cpu {
namespace {

class RotaryKernel final : public ops::Kernel {
 public:
  std::string name() const override { return "cpu.rotary_embedding"; }

  void run(ops::KernelContext& ctx) const override {
    for (size_t i = 0; i < 3; ++i) {
      if (!ctx.value(i).is_tensor() || ctx.input(i).dtype() != DType::F32) {
        return ops::run_reference(ctx);
      }
    }
    const Tensor& x = ctx.input(0);
    const Tensor& cos_t = ctx.input(1);
    const Tensor& sin_t = ctx.input(2);
    if (x.rank() != 3 && x.rank() != 4) return ops::run_reference(ctx);
    const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
    const int64_t batch = x.dim(0);
    int64_t heads, seq, head_size;
    if (x.rank() == 4) {
      heads = x.dim(1);
      seq = x.dim(2);
      head_size = x.dim(3);
    } else {
      heads = ctx.attr_int("num_heads", 0);
      seq = x.dim(1);
      if (heads <= 0 || x.dim(2) % heads != 0) return ops::run_reference(ctx);
      head_size = x.dim(2) / heads;
    }
    int64_t rot = ctx.attr_int("rotary_embedding_dim", 0);
    if (rot == 0) rot = head_size;
    const int64_t half = rot / 2;
    if (rot <= 0 || rot > head_size || rot % 2 != 0 || cos_t.dims() != sin_t.dims() ||
        cos_t.dim(-1) < half) {
      return ops::run_reference(ctx);
    }
    const bool has_pos = ctx.has_input(3);
    std::vector<int64_t> pos;
    if (has_pos) {
      const Tensor& p = ctx.input(3);
      if (p.dims() != Dims{batch, seq} || cos_t.rank() != 2) return ops::run_reference(ctx);
      pos = p.to_i64_vector();
      for (int64_t v : pos) {
        if (v < 0 || v >= cos_t.dim(0)) return ops::run_reference(ctx);
      }
    } else if (cos_t.rank() != 3 || cos_t.dim(0) != batch || cos_t.dim(1) != seq) {
      return ops::run_reference(ctx);
    }
    const int64_t cache_w = cos_t.dim(-1);
    Tensor y = ctx.allocate_output(0, DType::F32, x.dims());
    const float* px = x.data<float>();
    const float* pc = cos_t.data<float>();
    const float* ps = sin_t.data<float>();
    float* py = y.data<float>();
    const bool four_d = x.rank() == 4;
    parallel_for(batch * seq, 4, [&](int64_t begin, int64_t end) {
      for (int64_t bs = begin; bs < end; ++bs) {
        const int64_t b = bs / seq, s = bs % seq;
        const int64_t row = has_pos ? pos[static_cast<size_t>(bs)] : bs;
        const float* c = pc + row * cache_w;
        const float* sn = ps + row * cache_w;
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t base = four_d ? ((b * heads + h) * seq + s) * head_size
                                      : ((b * seq + s) * heads + h) * head_size;
          const float* xi = px + base;
          float* yo = py + base;
          if (interleaved) {
            for (int64_t i = 0; i < half; ++i) {
              const float x1 = xi[2 * i], x2 = xi[2 * i + 1];
              yo[2 * i] = c[i] * x1 - sn[i] * x2;
              yo[2 * i + 1] = sn[i] * x1 + c[i] * x2;
            }
          } else {
            for (int64_t i = 0; i < half; ++i) {
              const float x1 = xi[i], x2 = xi[i + half];
              yo[i] = c[i] * x1 - sn[i] * x2;
              yo[i + half] = sn[i] * x1 + c[i] * x2;
            }
          }
          for (int64_t i = rot; i < head_size; ++i) yo[i] = xi[i];  // beyond the rotary dims
        }
      }
    });
    ctx.set_output(0, std::move(y));
  }
};

std::unique_ptr<ops::Kernel> prepare_rotary(const PrepareContext& ctx) {
  if (!input_may_be(ctx, 0, DType::F32)) return nullptr;
  return std::make_unique<RotaryKernel>();
}

}  // namespace

KPT_REGISTER_CPU_KERNEL("", "RotaryEmbedding", prepare_rotary);

}  // namespace kpt::cpu
