#include "backends/cuda/fp8_product.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "backends/cuda/cuda_check.hpp"
#include "core/cast.hpp"

namespace kpt::cuda {

std::string fp8_weight_refusal(int64_t k, int64_t n) {
  if (k % 16 == 0 && n % 16 == 0) return "";
  return "K " + std::to_string(k) + ", N " + std::to_string(n) + ": FP8 needs multiples of 16";
}

Fp8ProductKernel::Fp8ProductKernel(const Tensor* weight, bool weight_transposed, int64_t count,
                                   Epilogue epilogue, std::string activation)
    : weight_(weight),
      weight_transposed_(weight_transposed),
      count_(count),
      epilogue_(epilogue),
      activation_(std::move(activation)) {
  const Dims& d = weight_->dims();
  check(d.size() == (count_ > 1 ? 3u : 2u),
        "FP8 product: weight " + dims_to_string(d) + " has the wrong rank");
  const int64_t rows = d[d.size() - 2], cols = d.back();
  k_ = weight_transposed_ ? cols : rows;
  n_ = weight_transposed_ ? rows : cols;
}

Fp8ProductKernel::~Fp8ProductKernel() {
  if (weight_q_) cudaFree(weight_q_);
  if (weight_scale_) cudaFree(weight_scale_);
}

std::string Fp8ProductKernel::name() const {
  std::string s =
      stage_ == Stage::Declined ? "cublasLt.gemm(f16, FP8 not chosen" : "cublasLt.gemm(fp8 e4m3";
  if (!activation_.empty()) s += "+" + activation_;
  if (count_ > 1) s += " x" + std::to_string(count_) + " siblings";
  if (stage_ != Stage::Declined && e4m3_reader_ && e4m3_reader_->stage_ != Stage::Declined)
    s += " -> e4m3";
  return s + ")";
}

void Fp8ProductKernel::set_fp8(bool on) {
  check(stage_ == Stage::Ready || stage_ == Stage::Declined,
        "FP8 product: chosen for or against FP8 before calibration");
  stage_ = on ? Stage::Ready : Stage::Declined;
}

void Fp8ProductKernel::load() {
  const Tensor w = weight_->dtype() == DType::F32 ? *weight_ : cast_tensor(*weight_, DType::F32);
  const float* src = w.data<float>();
  const int64_t total = w.numel();
  float amax = 0.0f;
  for (int64_t i = 0; i < total; ++i) amax = std::max(amax, std::fabs(src[i]));
  // As the device's scale_from_amax: an all-zero weight keeps a finite scale.
  weight_scale_host_ = std::max(amax, 1e-12f) / kE4M3Max;
  const float inv = 1.0f / weight_scale_host_;
  // [count, N, K] e4m3, whatever the source layout.
  std::vector<uint8_t> q(static_cast<size_t>(total));
  const int64_t per = k_ * n_;
  for (int64_t b = 0; b < count_; ++b) {
    const float* wb = src + b * per;
    uint8_t* qb = q.data() + b * per;
    for (int64_t n = 0; n < n_; ++n) {
      for (int64_t k = 0; k < k_; ++k) {
        const float v = weight_transposed_ ? wb[n * k_ + k] : wb[k * n_ + n];
        qb[n * k_ + k] = float_to_f8(DType::F8E4M3FN, v * inv, true);
      }
    }
  }
  if (!weight_q_) KPT_CUDA_CHECK(cudaMalloc(&weight_q_, q.size()));
  if (!weight_scale_) KPT_CUDA_CHECK(cudaMalloc(&weight_scale_, sizeof(float)));
  KPT_CUDA_CHECK(cudaMemcpy(weight_q_, q.data(), q.size(), cudaMemcpyHostToDevice));
  KPT_CUDA_CHECK(
      cudaMemcpy(weight_scale_, &weight_scale_host_, sizeof(float), cudaMemcpyHostToDevice));
  if (!input_) input_ = std::make_unique<Fp8Calibrator>();
  stage_ = Stage::Loaded;
}

void Fp8ProductKernel::start_calibration(cudaStream_t stream) {
  check(stage_ != Stage::Planned, "FP8 product: calibration before the weight was loaded");
  input_->reset(stream);
  stage_ = Stage::Calibrating;
}

void Fp8ProductKernel::finish_calibration(cudaStream_t stream) {
  check(stage_ == Stage::Calibrating, "FP8 product: calibration was not started");
  input_->finalize(stream);
  stage_ = Stage::Ready;
}

std::string Fp8ProductKernel::settle_e4m3_output(CublasLtGemm& gemm, cudaStream_t stream) {
  if (!e4m3_reader_) return "";
  check(stage_ != Stage::Planned && e4m3_reader_->stage_ != Stage::Planned,
        "FP8 product: settle the e4m3 output after both products' load()");
  constexpr int64_t m = 64;
  auto scratch = [](size_t bytes) {
    void* p = nullptr;
    KPT_CUDA_CHECK(cudaMalloc(&p, bytes));
    KPT_CUDA_CHECK(cudaMemset(p, 0, bytes));
    return std::unique_ptr<void, decltype(&cudaFree)>(p, &cudaFree);
  };
  const auto x = scratch(static_cast<size_t>(m * k_)), d = scratch(static_cast<size_t>(m * n_)),
             c = scratch(static_cast<size_t>(m * n_) * 2),
             bias = scratch(static_cast<size_t>(n_) * 2);
  struct Form {
    bool separate_c, fast_accum;
  };
  std::string refusals;
  for (const Form f :
       {Form{false, true}, Form{false, false}, Form{true, true}, Form{true, false}}) {
    const std::string what = std::string(f.separate_c ? "C separate" : "C = D") + ", " +
                             (f.fast_accum ? "fast" : "exact") + " accumulation";
    Fp8GemmArgs a;
    a.m = m;
    a.n = n_;
    a.k = k_;
    a.a = x.get();
    a.b = weight_q_;
    a.a_scale = input_->scale();
    a.b_scale = weight_scale_;
    a.c = d.get();
    a.out = DType::F8E4M3FN;
    a.d_scale = e4m3_reader_->input_inverse_scale();
    a.c_operand = f.separate_c ? c.get() : nullptr;
    a.bias = epilogue_ == Epilogue::None ? nullptr : bias.get();
    a.epilogue = epilogue_;
    a.fast_accum = f.fast_accum;
    try {
      gemm.run_fp8(a, stream);
      KPT_CUDA_CHECK(cudaStreamSynchronize(stream));
    } catch (const Error& e) {
      refusals += (refusals.empty() ? "" : "; ") + what + ": " + e.what();
      continue;
    }
    e4m3_separate_c_ = f.separate_c;
    e4m3_fast_accum_ = f.fast_accum;
    return "e4m3 output (" + what + ")" + (refusals.empty() ? "" : " after " + refusals);
  }
  e4m3_reader_ = nullptr;
  return "f16 output, cuBLASLt refused e4m3 output: " + refusals;
}

bool Fp8ProductKernel::needs_quantize_pass() const {
  if (input_from_norm_) return false;
  return !(producer_ && producer_->e4m3_reader_ == this && producer_->stage_ == Stage::Ready);
}

const float* Fp8ProductKernel::input_inverse_scale() const {
  check(input_ != nullptr, "FP8 product: its input scale is read before load()");
  return input_->inverse_scale();
}

float Fp8ProductKernel::activation_scale(cudaStream_t stream) const {
  return input_ ? input_->scale_host(stream) : 0.0f;
}

void Fp8ProductKernel::run(GpuRunContext& ctx, GpuArgs& g) const {
  if (stage_ != Stage::Calibrating && stage_ != Stage::Ready && stage_ != Stage::Declined)
    throw Error(
        "FP8 product: activation scales are not calibrated (the executor calibrates at "
        "open)");
  const DeviceBuffer& x = *g.in[0];
  const DeviceBuffer& w16 = *g.in[1];
  const bool has_bias = epilogue_ != Epilogue::None;
  const void* bias = has_bias ? g.in.at(2)->data() : nullptr;
  if (x.dims().empty() || x.dims().back() != k_)
    throw Error("FP8 product: input " + x.describe() + " does not have the weight's K " +
                std::to_string(k_));
  const int64_t m = x.numel() / k_;
  Dims out = x.dims();
  out.back() = n_;
  const bool fp8 = stage_ == Stage::Ready && m % 16 == 0;
  // X arrives in e4m3 from a product that wrote it for this one (same rows, so fp8 holds).
  const bool x_is_e4m3 = x.dtype() == DType::F8E4M3FN;
  if (x_is_e4m3 && !fp8) throw Error("FP8 product: an e4m3 input where FP8 does not run");
  const DType out_dtype = x_is_e4m3 ? DType::F16 : x.dtype();
  const bool e4m3_out = fp8 && e4m3_reader_ && e4m3_reader_->quantizes_input();
  DeviceBuffer all = ctx.alloc.allocate(e4m3_out ? DType::F8E4M3FN : out_dtype,
                                        count_ > 1 ? Dims{count_, m, n_} : out);
  if (stage_ == Stage::Calibrating) input_->observe(x.dtype(), x.data(), x.numel(), ctx.stream);
  if (fp8) {
    DeviceBuffer q;
    const void* xq = x.data();
    if (!x_is_e4m3) {
      const DeviceBuffer* copy = nullptr;  // written by X's producer (a LayerNorm)
      if (ctx.derived && !g.in_values.empty()) {
        auto it = ctx.derived->find(fp8_copy_key(g.in_values[0]));
        if (it != ctx.derived->end()) copy = &it->second;
      }
      if (copy) {
        xq = copy->data();
      } else {
        q = ctx.alloc.allocate(DType::F8E4M3FN, x.dims());
        quantize_e4m3(x.dtype(), x.data(), x.numel(), input_->scale(), q.data(), ctx.stream);
        xq = q.data();
      }
    }
    Fp8GemmArgs a;
    a.m = m;
    a.n = n_;
    a.k = k_;
    a.a = xq;
    a.b = weight_q_;
    a.a_scale = input_->scale();
    a.b_scale = weight_scale_;
    a.c = all.data();
    a.out = e4m3_out ? DType::F8E4M3FN : out_dtype;
    a.d_scale = e4m3_out ? e4m3_reader_->input_inverse_scale() : nullptr;
    DeviceBuffer c_operand;  // never read (beta 0); only where cuBLASLt refuses C = D
    if (e4m3_out && e4m3_separate_c_) {
      c_operand = ctx.alloc.allocate(DType::F16, out);
      a.c_operand = c_operand.data();
    }
    // Fast accumulation (the tensor cores' own between K blocks) wherever cuBLASLt takes it:
    // at these K (a few thousand at most) its error is far under e4m3's rounding, and the
    // accuracy choice at open measures the products as they run.
    a.fast_accum = !e4m3_out || e4m3_fast_accum_;
    a.bias = bias;
    a.epilogue = epilogue_;
    a.batch = count_;
    ctx.gemm.run_fp8(a, ctx.stream);
  } else {
    // Calibration, declined, or rows cuBLASLt's FP8 kernels refuse: the f16 product.
    ctx.gemm.run(gemm_precision(x.dtype()), {m, n_, k_, weight_transposed_, count_}, x.data(),
                 w16.data(), all.data(), ctx.stream, bias, epilogue_);
  }
  if (count_ == 1) {
    g.out[0] = all;
    return;
  }
  for (int64_t i = 0; i < count_; ++i) g.out[static_cast<size_t>(i)] = all.part(i * m * n_, out);
}

}  // namespace kpt::cuda
