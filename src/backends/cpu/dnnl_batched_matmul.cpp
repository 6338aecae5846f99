#include "backends/cpu/dnnl_batched_matmul.hpp"

#include <omp.h>

#include <algorithm>
#include <unordered_map>

namespace kpt::cpu {

using dt = dnnl::memory::data_type;
using md = dnnl::memory::desc;

namespace {
// Row-major strides for dims padded with leading ones to `rank`.
Dims padded(const Dims& d, size_t rank) {
  Dims out(rank - d.size(), 1);
  out.insert(out.end(), d.begin(), d.end());
  return out;
}
md plain(const Dims& d) {
  dnnl::memory::dims strides(d.size());
  int64_t s = 1;
  for (size_t i = d.size(); i-- > 0;) {
    strides[i] = s;
    s *= d[i];
  }
  return md(dnnl_util::to_dims(d), dt::f32, strides);
}
}  // namespace

std::optional<Dims> BatchedMatmul::output_dims(const Dims& a, const Dims& b) {
  if (a.size() < 2 || b.size() < 2) return std::nullopt;
  if (element_count(a) == 0 || element_count(b) == 0) return std::nullopt;
  const size_t r = std::max(a.size(), b.size());
  const Dims pa = padded(a, r), pb = padded(b, r);
  if (pa[r - 1] != pb[r - 2]) return std::nullopt;
  Dims y(r);
  for (size_t i = 0; i + 2 < r; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) return std::nullopt;
    y[i] = std::max(pa[i], pb[i]);
  }
  y[r - 2] = pa[r - 2];
  y[r - 1] = pb[r - 1];
  return y;
}

std::shared_ptr<const BatchedMatmul::Plan> BatchedMatmul::plan_for(const Dims& a,
                                                                   const Dims& b) const {
  return plans_.get(std::make_tuple(a, b, omp_get_max_threads()),
                    [&]() -> std::shared_ptr<const Plan> {
                      try {
                        return make_plan(a, b);
                      } catch (const dnnl::error&) {
                        return nullptr;  // a broadcast or shape oneDNN does not run
                      }
                    });
}

std::shared_ptr<const BatchedMatmul::Plan> BatchedMatmul::make_plan(const Dims& a,
                                                                    const Dims& b) const {
  const size_t r = std::max(a.size(), b.size());
  const Dims pa = padded(a, r), pb = padded(b, r);
  const Dims y = *output_dims(a, b);
  auto plan = std::make_shared<Plan>();
  plan->a_md = plain(pa);
  plan->b_md = plain(pb);
  plan->y_md = plain(y);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (activation_) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, activation_->alg, activation_->alpha, activation_->beta);
    attr.set_post_ops(ops);
  }
  const auto desc = [&] {
    if (!has_bias_) return dnnl::matmul::desc(plan->a_md, plan->b_md, plan->y_md);
    Dims bias(r, 1);
    bias[r - 1] = y[r - 1];
    plan->bias_md = plain(bias);
    return dnnl::matmul::desc(plan->a_md, plan->b_md, plan->bias_md, plan->y_md);
  }();
  const dnnl::matmul::primitive_desc pd(desc, attr, dnnl_util::engine());
  plan->matmul = dnnl::matmul(pd);
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  return plan;
}

bool BatchedMatmul::run(const float* a, const Dims& a_dims, const float* b, const Dims& b_dims,
                        const float* bias, float* y) const {
  const auto plan = plan_for(a_dims, b_dims);
  if (!plan) return false;
  auto& eng = dnnl_util::engine();
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(plan->a_md, eng, const_cast<float*>(a))},
      {DNNL_ARG_WEIGHTS, dnnl::memory(plan->b_md, eng, const_cast<float*>(b))},
      {DNNL_ARG_DST, dnnl::memory(plan->y_md, eng, y)}};
  if (has_bias_) args[DNNL_ARG_BIAS] = dnnl::memory(plan->bias_md, eng, const_cast<float*>(bias));
  if (plan->scratchpad_bytes) {
    void* pad = dnnl_util::scratch(dnnl_util::Scratch::Scratchpad, plan->scratchpad_bytes);
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(
        md({static_cast<int64_t>(plan->scratchpad_bytes)}, dt::u8, dnnl::memory::format_tag::a),
        eng, pad);
  }
  auto& s = dnnl_util::stream();
  plan->matmul.execute(s, args);
  s.wait();
  return true;
}

}  // namespace kpt::cpu
