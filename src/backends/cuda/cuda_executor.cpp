#include "backends/cuda/cuda_executor.hpp"

#include <algorithm>
#include <climits>
#include <map>
#include <sstream>

#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/device.hpp"
#include "backends/cuda/elementwise.hpp"
#include "backends/cuda/fp8_choice.hpp"
#include "backends/cuda/fp8_product.hpp"
#include "backends/cuda/graph.hpp"
#include "backends/cuda/memory_pool.hpp"
#include "backends/cuda/reduce.hpp"
#include "backends/cuda/stream.hpp"
#include "core/cast.hpp"
#include "core/compare.hpp"
#include "ops/run_node.hpp"

namespace kpt::cuda {

namespace {

constexpr size_t kAlign = 256;
// Input signatures (each with an arena and a CUDA graph) kept beyond the shape buckets'.
constexpr size_t kMaxExactSignatures = 8;
size_t aligned(size_t b) {
  return (b + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

DType float_dtype_for(Precision p) {
  switch (p) {
    case Precision::FP16:
    case Precision::FP8:
      return DType::F16;
    case Precision::BF16:
      return DType::BF16;
    default:
      return DType::F32;
  }
}

namespace {

class PoolAllocator final : public RunAllocator {
 public:
  PoolAllocator(DevicePool& pool, cudaStream_t s) : pool_(pool), s_(s) {}
  DeviceBuffer allocate(DType dtype, Dims dims) override {
    return DeviceBuffer::allocate(dtype, std::move(dims), pool_, s_);
  }

 private:
  DevicePool& pool_;
  cudaStream_t s_;
};

// Sizes and lifetimes (in node steps) of one run's allocations, in the order they were made.
struct AllocationLog {
  std::vector<size_t> bytes;
  std::vector<int> first, last;
  int step = 0;
};

// Pool memory, with each allocation's lifetime logged (freed: when its last holder lets go).
class RecordingAllocator final : public RunAllocator {
 public:
  RecordingAllocator(DevicePool& pool, cudaStream_t s, std::shared_ptr<AllocationLog> log)
      : pool_(pool), s_(s), log_(std::move(log)) {}
  DeviceBuffer allocate(DType dtype, Dims dims) override {
    const size_t bytes = aligned(static_cast<size_t>(element_count(dims)) * dtype_size(dtype));
    const size_t i = log_->bytes.size();
    log_->bytes.push_back(bytes);
    log_->first.push_back(log_->step);
    log_->last.push_back(INT_MAX);
    if (bytes == 0) return DeviceBuffer::wrap(dtype, std::move(dims), nullptr);
    void* p = pool_.allocate(bytes, s_);
    auto log = log_;
    DevicePool* pool = &pool_;
    cudaStream_t s = s_;
    std::shared_ptr<void> keep(p, [log, i, pool, s](void* q) {
      log->last[i] = log->step;
      try {
        pool->free(q, s);
      } catch (...) {
        // A deleter must not throw; a failed free leaks one block of the pool.
      }
    });
    return DeviceBuffer::wrap(dtype, std::move(dims), p, std::move(keep));
  }

 private:
  DevicePool& pool_;
  cudaStream_t s_;
  std::shared_ptr<AllocationLog> log_;
};

// Offsets in one arena for the logged allocations: largest first, each at the lowest offset
// clear of the placed ones whose lifetimes overlap its own.
std::vector<size_t> place_in_arena(const AllocationLog& log, size_t& total) {
  const size_t n = log.bytes.size();
  std::vector<size_t> order(n), offsets(n, 0);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return log.bytes[a] > log.bytes[b]; });
  std::vector<size_t> placed;
  total = 0;
  for (size_t i : order) {
    std::vector<size_t> conflicts;
    for (size_t j : placed) {
      if (log.first[i] <= log.last[j] && log.first[j] <= log.last[i]) conflicts.push_back(j);
    }
    std::sort(conflicts.begin(), conflicts.end(),
              [&](size_t a, size_t b) { return offsets[a] < offsets[b]; });
    size_t off = 0;
    for (size_t j : conflicts) {
      if (off + log.bytes[i] <= offsets[j]) break;
      off = std::max(off, offsets[j] + log.bytes[j]);
    }
    offsets[i] = off;
    total = std::max(total, off + log.bytes[i]);
    placed.push_back(i);
  }
  return offsets;
}

// Hands out the arena's slots in the recorded order: the capture sees the recorded run's
// allocations at fixed addresses.
class ReplayAllocator final : public RunAllocator {
 public:
  ReplayAllocator(char* base, const AllocationLog& log, const std::vector<size_t>& offsets,
                  std::shared_ptr<void> arena)
      : base_(base), log_(log), offsets_(offsets), arena_(std::move(arena)) {}
  DeviceBuffer allocate(DType dtype, Dims dims) override {
    const size_t bytes = aligned(static_cast<size_t>(element_count(dims)) * dtype_size(dtype));
    if (next_ >= offsets_.size() || log_.bytes[next_] != bytes)
      throw Error("CUDA graph capture: allocation " + std::to_string(next_) + " (" +
                  std::to_string(bytes) + " bytes) differs from the recorded run's");
    const size_t off = offsets_[next_++];
    return DeviceBuffer::wrap(dtype, std::move(dims), bytes == 0 ? nullptr : base_ + off, arena_);
  }

 private:
  char* base_;
  const AllocationLog& log_;
  const std::vector<size_t>& offsets_;
  std::shared_ptr<void> arena_;
  size_t next_ = 0;
};

struct Slot {
  Tensor host;
  bool has_host = false;
  DeviceBuffer dev;
  bool has_dev = false;
};

enum class Mode { Eager, Record, Capture };

Tensor shape_tensor(const ir::Node& n, const Dims& d) {
  const auto r = static_cast<int64_t>(d.size());
  if (n.op_type == "Size") return Tensor::scalar<int64_t>(DType::I64, element_count(d));
  auto norm = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
  const int64_t start = norm(n.attr_int("start", 0)), end = norm(n.attr_int("end", r));
  Tensor t(DType::I64, {std::max<int64_t>(0, end - start)});
  for (int64_t i = start; i < end; ++i) t.data<int64_t>()[i - start] = d[static_cast<size_t>(i)];
  return t;
}

}  // namespace

// What one input signature (dtypes and dims of the inputs) keeps between runs.
struct Signature {
  std::map<int, Tensor> host_known;      // host-node results
  std::map<int, DeviceBuffer> uploaded;  // host-known values GPU nodes read
  // CUDA graph mode:
  bool graph_ready = false;
  std::map<int, DeviceBuffer> input_buffers;  // graph inputs read on the device
  std::shared_ptr<void> arena;
  size_t arena_bytes = 0;
  std::unique_ptr<CapturedGraph> graph;
  std::vector<Slot> outputs;  // the captured run's outputs, by plan.outputs index
  uint64_t last_use = 0;      // run counter at the last run: the least recent is evicted
};

struct CudaExecutor::State {
  const ir::Graph& g;
  SessionOptions options;
  int device = 0;
  DType float_dtype = DType::F16;
  CudaPlan plan;
  std::unique_ptr<Stream> stream;  // declared before every buffer: destroyed after them
  DevicePool* pool = nullptr;
  std::unique_ptr<CublasLtGemm> gemm;
  int32_t* error_word = nullptr;  // device, DeviceErrorBit flags
  int32_t* error_host = nullptr;  // pinned copy
  std::map<int, DeviceBuffer> weights;
  size_t weight_bytes = 0;
  std::mutex mu;
  PinnedBuffer staging;
  std::map<std::string, std::unique_ptr<Signature>> signatures;
  size_t max_signatures = kMaxExactSignatures;
  uint64_t runs = 0;
  // Set by run_profiled: events recorded before each node and after the last one.
  std::vector<cudaEvent_t>* node_events = nullptr;
  std::vector<Fp8ProductKernel*> fp8_products;  // in the plan's nodes
  std::string fp8_calibration;                  // how the scales were chosen, for the report
  std::map<std::string, int> fp8_output_forms;  // settle_e4m3_output's results, counted
  std::string fp8_selection;                    // which products kept FP8, for the report

  State(const ir::Graph& graph, const SessionOptions& o) : g(graph), options(o) {}
  ~State() {
    signatures.clear();
    weights.clear();
    if (stream) cudaStreamSynchronize(stream->get());
    if (error_word) cudaFree(error_word);
    if (error_host) cudaFreeHost(error_host);
  }

  cudaStream_t s() const { return stream->get(); }
  DType device_dtype(DType logical) const { return logical == DType::F32 ? float_dtype : logical; }

  // A host tensor on the device in the device's type for it (f32 -> float_dtype), in memory
  // from `alloc` (nullptr: the pool, kept beyond the run).
  DeviceBuffer upload(const Tensor& t, RunAllocator* alloc) {
    const DType want = device_dtype(t.dtype());
    DeviceBuffer out = alloc ? alloc->allocate(want, t.dims())
                             : DeviceBuffer::allocate(want, t.dims(), *pool, s());
    copy_in(t, out);
    return out;
  }
  // Copies (and converts) a host tensor into existing device memory of the same element count.
  void copy_in(const Tensor& t, DeviceBuffer& dst) {
    if (t.dtype() == dst.dtype()) {
      dst.copy_from(t, staging, s());
      return;
    }
    const DeviceBuffer raw = DeviceBuffer::upload(t, *pool, staging, s());
    cast(t.dtype(), dst.dtype(), raw.data(), dst.data(), t.numel(), s());
  }
  // Copies (and converts) device memory into existing device memory of the same element count.
  void copy_device(const void* src, DType src_dtype, int64_t n, void* dst, DType dst_dtype) {
    if (src_dtype == dst_dtype) {
      KPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * dtype_size(src_dtype),
                                     cudaMemcpyDeviceToDevice, s()));
    } else {
      cast(src_dtype, dst_dtype, src, dst, n, s());
    }
  }
  // A device value back on the host in the model's type (converted on the device first).
  Tensor download(const DeviceBuffer& b, DType logical) {
    if (logical == DType::Undefined || logical == b.dtype()) return b.download(staging, s());
    DeviceBuffer wide = DeviceBuffer::allocate(logical, b.dims(), *pool, s());
    cast(b.dtype(), logical, b.data(), wide.data(), b.numel(), s());
    return wide.download(staging, s());
  }

  std::string signature_key(const std::vector<Value>& inputs, const runtime::DeviceIo& io) const;
  std::vector<Slot> execute(Signature& sig, const std::vector<Value>& inputs,
                            const runtime::DeviceIo& io, RunAllocator& alloc, Mode mode,
                            AllocationLog* log);
  std::vector<Value> collect(std::vector<Slot>& outs, const runtime::DeviceIo& io);
  void bind_graph_inputs(Signature& sig, const std::vector<Value>& inputs,
                         const runtime::DeviceIo& io);
  void check_device_errors();
};

std::string CudaExecutor::State::signature_key(const std::vector<Value>& inputs,
                                               const runtime::DeviceIo& io) const {
  std::string key;
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const std::string& name = plan.values[static_cast<size_t>(plan.inputs[i])].name;
    auto bound = io.inputs.find(name);
    if (bound != io.inputs.end()) {
      key += dims_to_string(bound->second.dims) + ";";
    } else if (i < inputs.size() && inputs[i].is_tensor()) {
      key += std::string(dtype_name(inputs[i].tensor.dtype())) +
             dims_to_string(inputs[i].tensor.dims()) + ";";
    } else {
      key += "-;";
    }
  }
  return key;
}

// Graph mode: inputs read on the device live in per-signature buffers the graph was captured
// with; each run copies its inputs into them.
void CudaExecutor::State::bind_graph_inputs(Signature& sig, const std::vector<Value>& inputs,
                                            const runtime::DeviceIo& io) {
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const int v = plan.inputs[i];
    const PlanValue& pv = plan.values[static_cast<size_t>(v)];
    if (!pv.on_device) continue;
    auto bound = io.inputs.find(pv.name);
    const Dims dims = bound != io.inputs.end() ? bound->second.dims : inputs[i].tensor.dims();
    auto it = sig.input_buffers.find(v);
    if (it == sig.input_buffers.end()) {
      const DType dt =
          device_dtype(bound != io.inputs.end()
                           ? pv.logical() == DType::Undefined ? bound->second.dtype : pv.logical()
                           : inputs[i].tensor.dtype());
      it = sig.input_buffers.emplace(v, DeviceBuffer::allocate(dt, dims, *pool, s())).first;
    }
    if (bound != io.inputs.end()) {
      copy_device(bound->second.data, bound->second.dtype, element_count(dims), it->second.data(),
                  it->second.dtype());
    } else {
      copy_in(inputs[i].tensor, it->second);
    }
  }
}

std::vector<Slot> CudaExecutor::State::execute(Signature& sig, const std::vector<Value>& inputs,
                                               const runtime::DeviceIo& io, RunAllocator& alloc,
                                               Mode mode, AllocationLog* log) {
  std::vector<Slot> slots(plan.values.size());
  const bool graph_mode = mode != Mode::Eager;
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const auto v = static_cast<size_t>(plan.inputs[i]);
    Slot& slot = slots[v];
    const PlanValue& pv = plan.values[v];
    auto bound = io.inputs.find(pv.name);
    if (graph_mode && pv.on_device) {
      slot.dev = sig.input_buffers.at(plan.inputs[i]);
      slot.has_dev = true;
    } else if (bound != io.inputs.end()) {
      const DeviceTensor& t = bound->second;
      const DType want = device_dtype(pv.logical() == DType::Undefined ? t.dtype : pv.logical());
      if (t.dtype == want) {
        slot.dev = DeviceBuffer::wrap(t.dtype, t.dims, t.data);  // I/O binding: no copy
      } else {
        slot.dev = alloc.allocate(want, t.dims);
        copy_device(t.data, t.dtype, element_count(t.dims), slot.dev.data(), want);
      }
      slot.has_dev = true;
    } else if (inputs[i].is_tensor()) {
      slot.host = inputs[i].tensor;
      slot.has_host = true;
    }
  }

  auto host_value = [&](int v) -> const Tensor* {
    const auto vi = static_cast<size_t>(v);
    if (slots[vi].has_host) return &slots[vi].host;
    if (plan.values[vi].initializer) return plan.values[vi].initializer;
    auto it = sig.host_known.find(v);
    if (it != sig.host_known.end()) return &it->second;
    if (slots[vi].has_dev) {
      if (mode == Mode::Capture) throw Error("CUDA graph capture: a device value read on the host");
      slots[vi].host = download(slots[vi].dev, plan.values[vi].logical());
      slots[vi].has_host = true;
      return &slots[vi].host;
    }
    throw Error("GPU executor: value '" + plan.values[vi].name + "' is not available");
  };
  auto device_value = [&](int v) -> const DeviceBuffer* {
    const auto vi = static_cast<size_t>(v);
    if (slots[vi].has_dev) return &slots[vi].dev;
    auto w = weights.find(v);
    if (w != weights.end()) return &w->second;
    if (plan.values[vi].host_known) {
      auto it = sig.uploaded.find(v);
      if (it == sig.uploaded.end()) {
        if (mode == Mode::Capture) throw Error("CUDA graph capture: an upload inside the capture");
        it = sig.uploaded.emplace(v, upload(*host_value(v), nullptr)).first;
      }
      return &it->second;
    }
    if (slots[vi].has_host) {
      slots[vi].dev = upload(slots[vi].host, &alloc);
      slots[vi].has_dev = true;
      return &slots[vi].dev;
    }
    throw Error("GPU executor: value '" + plan.values[vi].name + "' is not available");
  };
  auto dims_of = [&](int v) -> Dims {
    const auto vi = static_cast<size_t>(v);
    if (slots[vi].has_dev) return slots[vi].dev.dims();
    return host_value(v)->dims();
  };

  // Buffers nodes derived from this run's values (GpuRunContext::derived): freed when it ends.
  std::map<std::pair<std::string, int>, DeviceBuffer> derived;
  GpuRunContext ctx{s(), *gemm, alloc, error_word, &derived};
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    const PlanNode& pn = plan.nodes[k];
    const ir::Node& node = g.nodes[k];
    if (log) log->step = static_cast<int>(k);
    if (node_events) KPT_CUDA_CHECK(cudaEventRecord((*node_events)[k], s()));
    try {
      if (pn.where == Placement::Host) {
        bool cached = true;
        for (int v : pn.out) cached = cached && (v < 0 || sig.host_known.count(v));
        if (!cached) {
          std::vector<Value> outs;
          if (node.domain.empty() && (node.op_type == "Shape" || node.op_type == "Size")) {
            outs.push_back(Value::of(shape_tensor(node, dims_of(pn.in[0]))));
          } else {
            std::vector<Value> held;
            held.reserve(pn.in.size());
            for (int v : pn.in) held.push_back(v < 0 ? Value::none() : Value::of(*host_value(v)));
            std::vector<const Value*> in;
            for (size_t i = 0; i < pn.in.size(); ++i)
              in.push_back(pn.in[i] < 0 ? nullptr : &held[i]);
            outs = ops::run_node(node, in, nullptr);
          }
          for (size_t j = 0; j < pn.out.size() && j < outs.size(); ++j) {
            if (pn.out[j] >= 0 && outs[j].is_tensor()) sig.host_known[pn.out[j]] = outs[j].tensor;
          }
        }
      } else if (pn.where == Placement::Gpu) {
        GpuArgs a;
        a.in.assign(pn.in.size(), nullptr);
        a.host.assign(pn.in.size(), nullptr);
        a.out.resize(pn.out.size());
        a.in_values = pn.in;
        for (size_t i = 0; i < pn.in.size(); ++i) {
          if (pn.in[i] < 0) continue;
          if (pn.kernel->host_inputs[i]) {
            a.host[i] = host_value(pn.in[i]);
          } else {
            a.in[i] = device_value(pn.in[i]);
          }
        }
        pn.kernel->run(ctx, a);
        for (size_t j = 0; j < pn.out.size(); ++j) {
          if (pn.out[j] < 0) continue;
          if (a.out[j].dtype() == DType::Undefined)
            throw Error("the GPU kernel " + pn.kernel->name() + " did not produce output " +
                        std::to_string(j));
          Slot& slot = slots[static_cast<size_t>(pn.out[j])];
          slot.dev = std::move(a.out[j]);
          slot.has_dev = true;
        }
      } else {
        std::vector<Value> held;
        held.reserve(pn.in.size());
        for (int v : pn.in) held.push_back(v < 0 ? Value::none() : Value::of(*host_value(v)));
        std::vector<const Value*> in;
        for (size_t i = 0; i < pn.in.size(); ++i) in.push_back(pn.in[i] < 0 ? nullptr : &held[i]);
        std::vector<Value> outs = ops::run_node(node, in, nullptr);
        for (size_t j = 0; j < pn.out.size() && j < outs.size(); ++j) {
          if (pn.out[j] < 0 || !outs[j].is_tensor()) continue;
          Slot& slot = slots[static_cast<size_t>(pn.out[j])];
          slot.host = std::move(outs[j].tensor);
          slot.has_host = true;
        }
      }
    } catch (const Unsupported&) {
      throw;
    } catch (const Error& e) {
      const std::string where =
          pn.where == Placement::Gpu ? " on the GPU (" + pn.kernel->name() + ")" : " on the CPU";
      throw Error(node.label() + where + ": " + e.what());
    }
    // Values die after their last reader (and outputs nobody reads, at once).
    auto release = [&](int v) {
      if (v < 0) return;
      const PlanValue& pv = plan.values[static_cast<size_t>(v)];
      if (!pv.graph_output && pv.last_use <= static_cast<int>(k))
        slots[static_cast<size_t>(v)] = Slot{};
    };
    for (int v : pn.in) release(v);
    for (int v : pn.out) release(v);
  }
  if (log) log->step = static_cast<int>(plan.nodes.size());
  if (node_events) KPT_CUDA_CHECK(cudaEventRecord(node_events->back(), s()));

  std::vector<Slot> outs;
  for (int v : plan.outputs) {
    Slot o = slots[static_cast<size_t>(v)];
    if (!o.has_dev && !o.has_host) {
      if (plan.values[static_cast<size_t>(v)].host_known) {
        o.host = *host_value(v);
        o.has_host = true;
      } else {
        const Tensor* t = host_value(v);
        o.host = *t;
        o.has_host = true;
      }
    }
    outs.push_back(std::move(o));
  }
  return outs;
}

std::vector<Value> CudaExecutor::State::collect(std::vector<Slot>& outs,
                                                const runtime::DeviceIo& io) {
  std::vector<Value> result;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const PlanValue& pv = plan.values[static_cast<size_t>(plan.outputs[i])];
    Slot& o = outs[i];
    auto bound = io.outputs.find(pv.name);
    if (bound != io.outputs.end()) {
      const DeviceTensor& dst = bound->second;
      const Dims& dims = o.has_dev ? o.dev.dims() : o.host.dims();
      check(dst.dims == dims, "device output '" + pv.name + "': the caller's buffer is " +
                                  dims_to_string(dst.dims) + ", the output is " +
                                  dims_to_string(dims));
      if (o.has_dev) {
        copy_device(o.dev.data(), o.dev.dtype(), o.dev.numel(), dst.data, dst.dtype);
      } else {
        DeviceBuffer wrapped = DeviceBuffer::wrap(dst.dtype, dst.dims, dst.data);
        copy_in(o.host, wrapped);
      }
      result.push_back(Value::none());
    } else if (o.has_host) {
      result.push_back(Value::of(o.host));
    } else {
      result.push_back(Value::of(download(o.dev, pv.logical())));
    }
  }
  return result;
}

void CudaExecutor::State::check_device_errors() {
  KPT_CUDA_CHECK(
      cudaMemcpyAsync(error_host, error_word, sizeof(int32_t), cudaMemcpyDeviceToHost, s()));
  KPT_CUDA_CHECK(cudaStreamSynchronize(s()));
  const int32_t bits = *error_host;
  if (bits == 0) return;
  KPT_CUDA_CHECK(cudaMemsetAsync(error_word, 0, sizeof(int32_t), s()));
  std::string what;
  if (bits & kMaskNotKeyPadding)
    what += "an attention mask holds values other than 0 (visible) and <= -1000 (masked)";
  if (bits & kMaskNotTrailing)
    what += std::string(what.empty() ? "" : "; ") +
            "an attention mask hides keys that are not at the end (only right padding runs on "
            "the GPU's flash attention)";
  throw Unsupported("target cuda: " + what);
}

CudaExecutor::CudaExecutor(const ir::Graph& g, const SessionOptions& options, int device)
    : s_(std::make_unique<State>(g, options)) {
  require_device();
  const auto& status = runtime_status();
  check(device >= 0 && device < static_cast<int>(status.devices.size()),
        "target cuda:" + std::to_string(device) + ": this machine has " +
            std::to_string(status.devices.size()) + " CUDA device(s)");
  KPT_CUDA_CHECK(cudaSetDevice(device));
  State& st = *s_;
  st.device = device;
  st.float_dtype = float_dtype_for(options.precision);
  size_t bucket_shapes = 1;
  for (const auto& [name, symbol] : options.buckets.symbols) bucket_shapes *= symbol.sizes.size();
  st.max_signatures = kMaxExactSignatures + (options.buckets.empty() ? 0 : bucket_shapes);
  st.plan = make_cuda_plan(g, st.float_dtype, options.precision == Precision::FP8);
  st.stream = std::make_unique<Stream>();
  st.pool = &DevicePool::for_current_device();
  st.gemm = std::make_unique<CublasLtGemm>(options.cuda_gemm_tuning);
  KPT_CUDA_CHECK(cudaMalloc(&st.error_word, sizeof(int32_t)));
  KPT_CUDA_CHECK(cudaMemset(st.error_word, 0, sizeof(int32_t)));
  KPT_CUDA_CHECK(cudaMallocHost(&st.error_host, sizeof(int32_t)));
  // Weights: every initializer a GPU node reads on the device, uploaded once.
  for (size_t k = 0; k < st.plan.nodes.size(); ++k) {
    const PlanNode& pn = st.plan.nodes[k];
    if (pn.where != Placement::Gpu) continue;
    for (size_t i = 0; i < pn.in.size(); ++i) {
      const int v = pn.in[i];
      if (v < 0 || pn.kernel->host_inputs[i] || st.weights.count(v)) continue;
      const PlanValue& pv = st.plan.values[static_cast<size_t>(v)];
      if (!pv.initializer) continue;
      DeviceBuffer b = st.upload(*pv.initializer, nullptr);
      st.weight_bytes += b.nbytes();
      st.weights.emplace(v, std::move(b));
    }
  }
  // FP8 weights: quantized on the host, uploaded once; activation scales come from calibrate().
  for (PlanNode& pn : st.plan.nodes) {
    if (auto* f = dynamic_cast<Fp8ProductKernel*>(pn.kernel.get())) {
      f->load();
      st.fp8_products.push_back(f);
    }
  }
  // After every load: a product writing e4m3 for the next one reads that one's scale.
  for (Fp8ProductKernel* f : st.fp8_products) {
    const std::string form = f->settle_e4m3_output(*st.gemm, st.s());
    if (!form.empty()) st.fp8_output_forms[form]++;
  }
  st.stream->synchronize();
}

CudaExecutor::~CudaExecutor() = default;

namespace {

// The smallest cosine over the outputs of `got` to `want` (tensor outputs).
double min_cosine(const std::vector<Value>& got, const std::vector<Value>& want) {
  double c = 1.0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (got[i].is_tensor() && want[i].is_tensor())
      c = std::min(c, compare_outputs(got[i].tensor, want[i].tensor, 0, 0).cosine);
  }
  return c;
}

// What FP8 gains a product, in units of the time FP8 saves per multiply-add: its count*N*K
// multiply-adds per row of X, less the quantize pass it takes when no producer hands it X in
// e4m3 (reading K f16 and writing K e4m3 bytes per row). From the H200's figures at BERT's
// shapes (`kpt_gpu_bench --bert-products`, docs/GPU.md): FP8 with fast accumulation saves about
// 1.1e-9 us per multiply-add against f16, and a quantize pass costs 1.3e-6 us per element at
// K = 3072 (2.6e-6 at K = 768), about 1100 multiply-adds' saving or more. So an attention-out
// product (768 x 768) gains nothing once its pass is paid, and an FFN-out only after its FFN-in
// writes e4m3 for it. The products' order, not the exact figure, is what the choice uses.
double fp8_gain(const Fp8ProductKernel& f) {
  constexpr double kQuantizeCostPerElement = 1100.0;
  double gain = static_cast<double>(f.macs_per_row());
  if (f.needs_quantize_pass()) gain -= kQuantizeCostPerElement * static_cast<double>(f.k());
  return gain;
}

}  // namespace

// Which products keep FP8: all, when the calibration inputs' outputs stay within the accuracy
// budget of the f16 run's; otherwise each product's harm alone (the outputs' cosine with only
// it in FP8) is measured, and products are switched to FP8 one at a time, the largest gain
// (fp8_gain, given the choices so far: a product after one in FP8 skips its quantize pass)
// per unit of harm first, each kept only if the outputs stay within the budget. Products FP8
// would not speed up stay in f16. The budget is SessionOptions::accuracy_budget (a cosine)
// with a fifth of its slack held back, since the calibration inputs stand for the real ones.
// Returns the report line.
std::string CudaExecutor::choose_fp8_products(State& st,
                                              const std::function<std::vector<Value>()>& run_once,
                                              const std::vector<Value>& reference) {
  const double budget = st.options.accuracy_budget;
  auto& products = st.fp8_products;
  const double all = min_cosine(run_once(), reference);
  std::ostringstream o;
  o.precision(7);
  if (budget <= 0 || all >= 1.0 - 0.8 * (1.0 - budget)) {
    o << "all " << products.size() << " in FP8 (outputs' cosine to the f16 run " << all << ")";
    return o.str();
  }
  const double target = 1.0 - 0.8 * (1.0 - budget);
  std::vector<double> harm(products.size());
  for (size_t i = 0; i < products.size(); ++i) {
    for (size_t j = 0; j < products.size(); ++j) products[j]->set_fp8(j == i);
    harm[i] = std::max(1.0 - min_cosine(run_once(), reference), 1e-12);
  }
  for (Fp8ProductKernel* f : products) f->set_fp8(false);
  double total = 0.0;
  for (const Fp8ProductKernel* f : products) total += static_cast<double>(f->macs_per_row());
  const Fp8Choice chosen = choose_fp8_by_gain(
      harm, [&](size_t i) { return fp8_gain(*products[i]); },
      [&](size_t i, bool on) { products[i]->set_fp8(on); },
      [&] { return min_cosine(run_once(), reference); }, target);
  const size_t kept = chosen.kept, tried = chosen.tried;
  const double reached = chosen.reached, gained = chosen.gained;
  o << kept << " of " << products.size() << " in FP8";
  if (tried > kept) o << ", " << tried - kept << " declined for accuracy";
  if (products.size() > tried) o << ", " << products.size() - tried << " where FP8 would not gain";
  o << " (chosen by gain per unit of harm; outputs' cosine to the f16 run " << reached
    << ", target " << target << " from accuracy budget " << budget << "; all in FP8: " << all
    << "; the chosen carry " << static_cast<int>(100.0 * gained / total + 0.5)
    << "% of the products' multiply-adds, net of quantize passes)";
  return o.str();
}

void CudaExecutor::calibrate(const std::vector<Value>& inputs) {
  State& st = *s_;
  std::lock_guard<std::mutex> lock(st.mu);
  KPT_CUDA_CHECK(cudaSetDevice(st.device));
  if (st.fp8_products.empty()) return;
  // Eager runs (no graph: the kernels change behaviour between them) on their own signature;
  // the outputs on the host.
  auto run_once = [&] {
    Signature sig;
    PoolAllocator alloc(*st.pool, st.s());
    std::vector<Slot> outs = st.execute(sig, inputs, {}, alloc, Mode::Eager, nullptr);
    std::vector<Value> result = st.collect(outs, {});
    outs.clear();
    st.check_device_errors();
    return result;
  };
  for (Fp8ProductKernel* f : st.fp8_products) f->start_calibration(st.s());
  const std::vector<Value> reference = run_once();  // f16, every product observing its input
  for (Fp8ProductKernel* f : st.fp8_products) f->finish_calibration(st.s());
  std::string dims;
  for (const Value& v : inputs) {
    if (v.is_tensor()) dims += (dims.empty() ? "" : ", ") + dims_to_string(v.tensor.dims());
  }
  st.fp8_calibration = "one f16 run on inputs " + dims;
  st.fp8_selection = choose_fp8_products(st, run_once, reference);
  st.signatures.clear();
  st.stream->synchronize();
}

std::vector<Value> CudaExecutor::run(const std::vector<Value>& inputs,
                                     const runtime::DeviceIo& io) const {
  State& st = *s_;
  std::lock_guard<std::mutex> lock(st.mu);
  KPT_CUDA_CHECK(cudaSetDevice(st.device));
  const std::string key = st.signature_key(inputs, io);
  // Each signature holds an arena and a graph; bound their number (room for every shape bucket
  // plus the exact shapes the CPU planner would keep), evicting the least recently run.
  if (!st.signatures.count(key) && st.signatures.size() >= st.max_signatures) {
    auto oldest = st.signatures.begin();
    for (auto it = st.signatures.begin(); it != st.signatures.end(); ++it) {
      if (it->second->last_use < oldest->second->last_use) oldest = it;
    }
    st.signatures.erase(oldest);
  }
  auto& sig_ptr = st.signatures[key];
  if (!sig_ptr) sig_ptr = std::make_unique<Signature>();
  Signature& sig = *sig_ptr;
  sig.last_use = ++st.runs;
  const bool graphs = st.options.cuda_graphs && st.plan.no_graph_reason.empty();
  if (!graphs) {
    PoolAllocator alloc(*st.pool, st.s());
    std::vector<Slot> outs = st.execute(sig, inputs, io, alloc, Mode::Eager, nullptr);
    std::vector<Value> result = st.collect(outs, io);
    outs.clear();
    st.check_device_errors();
    return result;
  }
  st.bind_graph_inputs(sig, inputs, io);
  if (!sig.graph_ready) {
    // Record: a real run whose allocations are logged, then placed in one arena.
    auto log = std::make_shared<AllocationLog>();
    std::vector<Value> result;
    {
      RecordingAllocator rec(*st.pool, st.s(), log);
      std::vector<Slot> outs = st.execute(sig, inputs, io, rec, Mode::Record, log.get());
      result = st.collect(outs, io);
      log->step = static_cast<int>(st.plan.nodes.size());
    }
    st.check_device_errors();
    std::vector<size_t> offsets = place_in_arena(*log, sig.arena_bytes);
    void* base = st.pool->allocate(std::max<size_t>(sig.arena_bytes, kAlign), st.s());
    DevicePool* pool = st.pool;
    cudaStream_t stream = st.s();
    sig.arena = std::shared_ptr<void>(base, [pool, stream](void* p) {
      try {
        pool->free(p, stream);
      } catch (...) {
        // A deleter must not throw; a failed free leaks the arena.
      }
    });
    ReplayAllocator replay(static_cast<char*>(base), *log, offsets, sig.arena);
    sig.graph = std::make_unique<CapturedGraph>();
    sig.graph->capture(st.s(), [&](cudaStream_t) {
      sig.outputs = st.execute(sig, inputs, io, replay, Mode::Capture, nullptr);
    });
    sig.graph_ready = true;
    return result;
  }
  sig.graph->replay(st.s());
  std::vector<Value> result = st.collect(sig.outputs, io);
  st.check_device_errors();
  return result;
}

std::vector<Value> CudaExecutor::run_profiled(const std::vector<Value>& inputs,
                                              std::vector<Session::NodeTime>& times) const {
  State& st = *s_;
  std::lock_guard<std::mutex> lock(st.mu);
  KPT_CUDA_CHECK(cudaSetDevice(st.device));
  // Eager launches with an event between nodes: a node's time is the device time between its
  // event and the next (host and CPU work show as the gaps they leave on the stream).
  std::vector<cudaEvent_t> events(st.plan.nodes.size() + 1);
  for (auto& e : events) KPT_CUDA_CHECK(cudaEventCreate(&e));
  struct Cleanup {
    State& st;
    std::vector<cudaEvent_t>& events;
    ~Cleanup() {
      st.node_events = nullptr;
      for (auto e : events) cudaEventDestroy(e);
    }
  } cleanup{st, events};
  st.node_events = &events;
  // The signature's host work and uploads, when an earlier run made them, are not timed again.
  auto& sig_ptr = st.signatures[st.signature_key(inputs, {})];
  if (!sig_ptr) sig_ptr = std::make_unique<Signature>();
  Signature& sig = *sig_ptr;
  PoolAllocator alloc(*st.pool, st.s());
  std::vector<Slot> outs = st.execute(sig, inputs, {}, alloc, Mode::Eager, nullptr);
  std::vector<Value> result = st.collect(outs, {});
  outs.clear();
  st.check_device_errors();
  times.clear();
  for (size_t k = 0; k < st.plan.nodes.size(); ++k) {
    const ir::Node& n = st.g.nodes[k];
    const PlanNode& pn = st.plan.nodes[k];
    float ms = 0;
    KPT_CUDA_CHECK(cudaEventElapsedTime(&ms, events[k], events[k + 1]));
    const std::string kernel = pn.where == Placement::Gpu    ? pn.kernel->name()
                               : pn.where == Placement::Host ? "host"
                                                             : "cpu fallback";
    times.push_back(Session::NodeTime{n.name.empty() ? n.outputs[0] : n.name,
                                      (n.domain.empty() ? "" : n.domain + ".") + n.op_type, kernel,
                                      ms});
  }
  return result;
}

std::string CudaExecutor::report() const {
  const State& st = *s_;
  const auto& dev = runtime_status().devices.at(static_cast<size_t>(st.device));
  std::ostringstream o;
  o << "target        cuda:" << st.device << " (" << dev.name << "), f32 values as "
    << dtype_name(st.float_dtype) << "\n";
  o << "weights       " << st.weights.size() << " tensors, " << st.weight_bytes
    << " bytes on the device\n";
  if (!st.fp8_products.empty())
    o << "fp8 gemms     " << st.fp8_products.size()
      << " (weights e4m3, scale amax/448 per tensor; activation scales amax/448 from "
      << (st.fp8_calibration.empty() ? std::string("no calibration yet") : st.fp8_calibration)
      << "; a run whose rows are not a multiple of 16 computes them in f16)\n";
  if (!st.fp8_selection.empty()) o << "              " << st.fp8_selection << "\n";
  for (const auto& [form, n] : st.fp8_output_forms)
    o << "              " << n << " writing for the next FP8 product: " << form << "\n";
  o << st.plan.report(st.g);
  const std::string tuning = st.gemm->tuning_summary();
  if (!tuning.empty()) o << "gemm tuning   " << tuning << "\n";
  if (!st.options.cuda_gemm_tuning)
    o << "              (GEMM tuning turned off by the session options)\n";
  if (!st.options.cuda_graphs)
    o << "              (CUDA graphs turned off by the session options)\n";
  return o.str();
}

}  // namespace kpt::cuda

namespace kpt::runtime {

std::unique_ptr<DeviceExecutor> make_cuda_executor(const ir::Graph& g,
                                                   const SessionOptions& options,
                                                   const DeviceTarget& target) {
  return std::make_unique<cuda::CudaExecutor>(g, options, target.index);
}

std::string describe_cuda_plan(const ir::Graph& g, Precision precision) {
  const DType f = cuda::float_dtype_for(precision);
  return "f32 values as " + std::string(dtype_name(f)) + "\n" +
         cuda::make_cuda_plan(g, f, precision == Precision::FP8).report(g);
}

}  // namespace kpt::runtime
