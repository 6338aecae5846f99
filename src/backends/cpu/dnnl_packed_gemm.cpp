#include "backends/cpu/dnnl_packed_gemm.hpp"

#include <omp.h>

#include <cstring>
#include <unordered_map>

#include "backends/cpu/dnnl_quantize.hpp"
#include "kpt/error.hpp"

namespace kpt::cpu {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;

GemmPrecision gemm_precision(Precision p) {
  switch (p) {
    case Precision::BF16:
      return GemmPrecision::BF16;
    case Precision::INT8:
      return GemmPrecision::INT8;
    default:
      return GemmPrecision::F32;
  }
}

const char* gemm_precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::BF16:
      return "bf16";
    case GemmPrecision::INT8:
      return "int8";
    default:
      return "fp32";
  }
}

namespace {
dt src_type(GemmPrecision p) {
  return p == GemmPrecision::F32 ? dt::f32 : p == GemmPrecision::BF16 ? dt::bf16 : dt::u8;
}
dt weight_type(GemmPrecision p) {
  return p == GemmPrecision::F32 ? dt::f32 : p == GemmPrecision::BF16 ? dt::bf16 : dt::s8;
}
}  // namespace

PackedGemm::PackedGemm(const float* w, int64_t k, int64_t n, Options options)
    : k_(k), n_(n), opt_(std::move(options)) {
  check(k > 0 && n > 0,
        "GEMM weights must have K, N > 0, got " + std::to_string(k) + " x " + std::to_string(n));
  // The layout oneDNN picks for "any" weights at a typical M; later plans for other M reuse it.
  auto& eng = dnnl_util::engine();
  const auto pd = dnnl::matmul::primitive_desc(
      [&] {
        const md src = a_desc(std::max<int64_t>(1, opt_.m_hint), src_type(opt_.precision));
        const md wmd({k, n}, weight_type(opt_.precision), tag::any);
        const md dst({std::max<int64_t>(1, opt_.m_hint), n}, dt::f32, tag::ab);
        if (opt_.has_bias && opt_.precision != GemmPrecision::INT8)
          return dnnl::matmul::desc(src, wmd, md({1, n}, dt::f32, tag::ab), dst);
        return dnnl::matmul::desc(src, wmd, dst);
      }(),
      attributes(), eng);
  packed_md_ = pd.weights_desc();
  if (reuse_packed()) return;
  pack(w);
  record_packed();
}

bool PackedGemm::reuse_packed() {
  if (!opt_.packed) return false;
  if (opt_.precision == GemmPrecision::INT8) {
    const auto scales = opt_.packed->find(opt_.packed_prefix + "gemm.scales");
    const auto sums = opt_.packed->find(opt_.packed_prefix + "gemm.column_sums");
    const size_t bytes = static_cast<size_t>(n_) * 4;
    if (!scales || !sums || scales->size != bytes || sums->size != bytes) return false;
    w_scales_.resize(static_cast<size_t>(n_));
    w_column_sums_.resize(static_cast<size_t>(n_));
    std::memcpy(w_scales_.data(), scales->data, bytes);
    std::memcpy(w_column_sums_.data(), sums->data, bytes);
  }
  const auto bytes = opt_.packed->find(packed_key(opt_.packed_prefix, "gemm.weights", packed_md_));
  if (!bytes) return false;
  auto mem = memory_over(*bytes, packed_md_);
  if (!mem) return false;
  packed_ = *mem;
  packed_keeper_ = bytes->keeper;
  return true;
}

void PackedGemm::pack(const float* w) {
  const int64_t k = k_, n = n_;
  std::vector<float> scaled;
  if (opt_.alpha != 1.f) {
    scaled.assign(w, w + k * n);
    for (float& v : scaled) v *= opt_.alpha;
    w = scaled.data();
  }
  auto& eng = dnnl_util::engine();
  packed_ = dnnl::memory(packed_md_, eng);
  const tag plain = opt_.weights_transposed ? tag::ba : tag::ab;
  auto& s = dnnl_util::stream();
  if (opt_.precision == GemmPrecision::INT8) {
    std::vector<int8_t> q(static_cast<size_t>(k * n));
    w_scales_.resize(static_cast<size_t>(n));
    w_column_sums_.resize(static_cast<size_t>(n));
    quantize_weights_s8(w, k, n, opt_.weights_transposed, q.data(), w_scales_.data(),
                        w_column_sums_.data());
    dnnl::memory src(md({k, n}, dt::s8, tag::ab), eng, q.data());
    dnnl::reorder(src, packed_).execute(s, src, packed_);
  } else {
    dnnl::memory src(md({k, n}, dt::f32, plain), eng, const_cast<float*>(w));
    dnnl::reorder(src, packed_).execute(s, src, packed_);
  }
  s.wait();
}

void PackedGemm::record_packed() const {
  if (!opt_.packed) return;
  if (opt_.precision == GemmPrecision::INT8) {
    // Copies: the kernel's vectors are not shared.
    auto keep = [](const auto& v) {
      auto copy = std::make_shared<std::decay_t<decltype(v)>>(v);
      return PackedBytes{copy->data(), copy->size() * 4, copy};
    };
    opt_.packed->store(opt_.packed_prefix + "gemm.scales", keep(w_scales_));
    opt_.packed->store(opt_.packed_prefix + "gemm.column_sums", keep(w_column_sums_));
  }
  opt_.packed->store(packed_key(opt_.packed_prefix, "gemm.weights", packed_md_), bytes_of(packed_));
}

md PackedGemm::a_desc(int64_t m, dt type) const {
  if (opt_.a_transposed) return md({m, k_}, type, dnnl::memory::dims{1, m});
  return md({m, k_}, type, tag::ab);
}

dnnl::primitive_attr PackedGemm::attributes() const {
  dnnl::primitive_attr attr;
  // Our scratch, not oneDNN's: a primitive run from two threads at once must not share it.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops ops;
  if (opt_.precision == GemmPrecision::INT8) {
    // Scale per column = activation scale (known per run) x weight scale, as a binary post-op
    // over a run-time vector: oneDNN 2.6's brgemm kernels take no run-time output scales.
    ops.append_binary(dnnl::algorithm::binary_mul, md({1, n_}, dt::f32, tag::ab));
  }
  if (opt_.accumulate_beta != 0.f) ops.append_sum(opt_.accumulate_beta);
  if (opt_.precision == GemmPrecision::INT8) {
    // Bias and the zero-point correction, added after scaling.
    ops.append_binary(dnnl::algorithm::binary_add, md({1, n_}, dt::f32, tag::ab));
  }
  if (opt_.activation)
    ops.append_eltwise(1.f, opt_.activation->alg, opt_.activation->alpha, opt_.activation->beta);
  attr.set_post_ops(ops);
  return attr;
}

std::shared_ptr<const PackedGemm::Plan> PackedGemm::make_plan(int64_t m) const {
  auto& eng = dnnl_util::engine();
  auto plan = std::make_shared<Plan>();
  plan->src_md = a_desc(m, src_type(opt_.precision));
  const md dst({m, n_}, dt::f32, tag::ab);
  const auto desc =
      opt_.has_bias && opt_.precision != GemmPrecision::INT8
          ? dnnl::matmul::desc(plan->src_md, packed_md_, md({1, n_}, dt::f32, tag::ab), dst)
          : dnnl::matmul::desc(plan->src_md, packed_md_, dst);
  const dnnl::matmul::primitive_desc pd(desc, attributes(), eng);
  plan->matmul = dnnl::matmul(pd);
  plan->scratchpad_bytes = pd.scratchpad_desc().get_size();
  return plan;
}

std::shared_ptr<const PackedGemm::Plan> PackedGemm::plan_for(int64_t m) const {
  return plans_.get({m, omp_get_max_threads()}, [&]() -> std::shared_ptr<const Plan> {
    try {
      return make_plan(m);
    } catch (const dnnl::error&) {
      return nullptr;  // no oneDNN kernel for this M with the packed layout
    }
  });
}

bool PackedGemm::run(const float* a, int64_t m, const float* bias, float* y) const {
  if (m == 0) return true;
  const auto plan = plan_for(m);
  if (!plan) return false;
  auto& eng = dnnl_util::engine();
  auto& s = dnnl_util::stream();
  std::unordered_map<int, dnnl::memory> args;
  void* pad = plan->scratchpad_bytes
                  ? dnnl_util::scratch(dnnl_util::Scratch::Scratchpad, plan->scratchpad_bytes)
                  : nullptr;
  if (pad)
    args[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(md({static_cast<int64_t>(plan->scratchpad_bytes)}, dt::u8, tag::a), eng, pad);
  const int64_t count = m * k_;
  dnnl::memory src;
  switch (opt_.precision) {
    case GemmPrecision::F32:
      src = dnnl::memory(plan->src_md, eng, const_cast<float*>(a));
      break;
    case GemmPrecision::BF16: {
      auto* buf = static_cast<uint16_t*>(
          dnnl_util::scratch(dnnl_util::Scratch::Source, static_cast<size_t>(count) * 2));
      convert_to_bf16(a, count, buf);
      src = dnnl::memory(plan->src_md, eng, buf);
      break;
    }
    case GemmPrecision::INT8: {
      auto* buf = static_cast<uint8_t*>(
          dnnl_util::scratch(dnnl_util::Scratch::Source, static_cast<size_t>(count)));
      const ActivationQuant q = quantize_u8(a, count, buf);
      src = dnnl::memory(plan->src_md, eng, buf);
      auto* vec = static_cast<float*>(
          dnnl_util::scratch(dnnl_util::Scratch::Vector, static_cast<size_t>(2 * n_) * 4));
      float* scales = vec;
      float* shift = vec + n_;
      const float zp = static_cast<float>(q.zero_point);
      // sum_k (q_a - zp) * q_w = sum_k q_a * q_w - zp * colsum(q_w): the second term, scaled,
      // joins the bias.
      for (int64_t j = 0; j < n_; ++j) {
        scales[j] = q.scale * w_scales_[static_cast<size_t>(j)];
        shift[j] = (bias ? bias[j] : 0.f) -
                   scales[j] * zp * static_cast<float>(w_column_sums_[static_cast<size_t>(j)]);
      }
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
          dnnl::memory(md({1, n_}, dt::f32, tag::ab), eng, scales);
      const int add_index = opt_.accumulate_beta != 0.f ? 2 : 1;
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(add_index) | DNNL_ARG_SRC_1] =
          dnnl::memory(md({1, n_}, dt::f32, tag::ab), eng, shift);
      break;
    }
  }
  args[DNNL_ARG_SRC] = src;
  args[DNNL_ARG_WEIGHTS] = packed_;
  args[DNNL_ARG_DST] = dnnl::memory(md({m, n_}, dt::f32, tag::ab), eng, y);
  if (opt_.has_bias && opt_.precision != GemmPrecision::INT8)
    args[DNNL_ARG_BIAS] =
        dnnl::memory(md({1, n_}, dt::f32, tag::ab), eng, const_cast<float*>(bias));
  plan->matmul.execute(s, args);
  s.wait();
  return true;
}

}  // namespace kpt::cpu
