#include "kpt/session.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "analysis/shape_inference.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_plan_cache.hpp"
#include "engine/engine_file.hpp"
#include "ir/model.hpp"
#include "kpt/error.hpp"
#include "onnx/import.hpp"
#include "passes/pass_manager.hpp"
#include "runtime/auto_precision.hpp"
#include "runtime/device_executor.hpp"
#include "runtime/executor.hpp"
#include "runtime/kernel_plan.hpp"
#include "runtime/random_inputs.hpp"
#include "runtime/session_impl.hpp"

namespace kpt {

namespace {

IoInfo io_info(const ir::ValueInfo& v) {
  IoInfo r;
  r.name = v.name;
  const ir::Type* t = &v.type;
  if (t->kind == ir::Type::Kind::Sequence) r.kind = "sequence";
  if (t->kind == ir::Type::Kind::Optional) r.kind = "optional";
  if (t->kind != ir::Type::Kind::Tensor && t->inner) t = t->inner.get();
  if (t->kind == ir::Type::Kind::Sequence && t->inner) t = t->inner.get();
  r.dtype = t->elem;
  if (t->shape) {
    r.has_shape = true;
    for (const auto& d : *t->shape) {
      r.dims.push_back(d.known() ? d.value : -1);
      r.symbols.push_back(d.symbol);
    }
  }
  return r;
}

// The output's dims as declared where they name an input symbol, else as shape inference
// found them (exporters name output dims on their own, like "Gemmoutput_0_dim_0"), so shape
// buckets know which output axes carry which input symbol.
IoInfo output_info(const ir::Graph& g, const ir::ValueInfo& v,
                   const std::set<std::string>& input_symbols) {
  IoInfo r = io_info(v);
  auto it = g.value_types.find(v.name);
  if (it == g.value_types.end() || it->second.kind != ir::Type::Kind::Tensor || !it->second.shape) {
    return r;
  }
  const ir::Shape& inferred = *it->second.shape;
  if (!r.has_shape) {
    r.has_shape = true;
    r.dims.assign(inferred.size(), -1);
    r.symbols.assign(inferred.size(), "");
  }
  if (r.dims.size() != inferred.size()) return r;
  for (size_t d = 0; d < r.dims.size(); ++d) {
    if (r.dims[d] >= 0 || input_symbols.count(r.symbols[d])) continue;
    if (!inferred[d].known() && inferred[d].symbol.empty()) continue;
    r.dims[d] = inferred[d].known() ? inferred[d].value : -1;
    r.symbols[d] = inferred[d].symbol;
  }
  return r;
}

// Runs on every inference: the messages are built only when a check fails.
void check_input(const IoInfo& info, const Value& v) {
  auto what = [&] { return "input '" + info.name + "'"; };
  if (info.kind == "tensor") {
    if (!v.is_tensor()) fail(what() + ": expected a tensor");
  } else if (info.kind == "sequence") {
    if (!v.is_sequence()) fail(what() + ": expected a sequence of tensors");
    return;
  } else {
    return;
  }
  const Tensor& t = v.tensor;
  if (info.dtype != DType::Undefined && t.dtype() != info.dtype)
    fail(what() + ": expected element type " + std::string(dtype_name(info.dtype)) + ", got " +
         std::string(dtype_name(t.dtype())));
  if (!info.has_shape) return;
  if (t.rank() != info.dims.size())
    fail(what() + ": expected rank " + std::to_string(info.dims.size()) + " (shape " +
         dims_to_string(info.dims) + "), got shape " + dims_to_string(t.dims()));
  for (size_t i = 0; i < info.dims.size(); ++i) {
    if (info.dims[i] >= 0 && info.dims[i] != t.dims()[i])
      fail(what() + ": dimension " + std::to_string(i) + " must be " +
           std::to_string(info.dims[i]) + " (declared shape " + dims_to_string(info.dims) +
           "), got shape " + dims_to_string(t.dims()));
  }
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  const auto& g = impl_->model.graph;
  // An engine's graph is optimized already.
  if (!impl_->from_engine) {
    impl_->progress("optimize (graph passes at level " +
                    passes::level_name(impl_->options.optimization) + ")");
    const bool for_cpu = runtime::parse_target(impl_->options.target).is_cpu();
    impl_->optimize_report =
        passes::optimize(impl_->model.graph, impl_->options.optimization,
                         for_cpu ? passes::PassTarget::Cpu : passes::PassTarget::Gpu);
    impl_->optimization_text = impl_->optimize_report->explain();
  }
  if (impl_->options.check_unsupported_at_load) {
    std::string report = runtime::unsupported_ops_report(g);
    if (!report.empty()) unsupported(report);
  }
  const runtime::DeviceTarget target = runtime::parse_target(impl_->options.target);
  if (!target.is_cpu()) {
    const Precision p = impl_->options.precision;
    check(
        p == Precision::FP16 || p == Precision::BF16 || p == Precision::FP32 || p == Precision::FP8,
        std::string("precision ") + precision_name(p) +
            " is not available on target cuda; expected fp16, bf16, fp8 or fp32");
    analysis::infer_shapes(impl_->model.graph);
    impl_->device = runtime::make_cuda_executor(g, impl_->options, target);
  } else if (impl_->options.precision == Precision::FP16 ||
             impl_->options.precision == Precision::FP8) {
    fail(std::string("precision ") + precision_name(impl_->options.precision) +
         " runs on the GPU only (target cuda); the CPU takes fp32, bf16, int8 or auto");
  } else if (impl_->options.fast_kernels) {
    impl_->progress(impl_->from_engine ? "prepare kernels (prepacked weights from the engine)"
                                       : "prepare kernels (packing weights)");
    impl_->plan =
        runtime::plan_kernels(impl_->model.graph, impl_->options.precision, impl_->packed.get(),
                              impl_->from_engine ? &impl_->engine_precisions : nullptr);
    if (impl_->options.memory_planning) {
      impl_->memory = std::make_unique<runtime::MemoryPlanner>(impl_->model.graph,
                                                               impl_->options.max_exact_plans);
    }
  }
  for (const auto& i : g.inputs) {
    if (!g.initializers.count(i.name)) impl_->inputs.push_back(io_info(i));
  }
  for (const auto& o : g.outputs) impl_->outputs.push_back(io_info(o));
  if (impl_->device && impl_->options.precision == Precision::FP8) {
    impl_->progress("fp8 calibration (one f16 run sets the activation scales)");
    impl_->device->calibrate(impl_->fp8_calibration_inputs());
  }
  if (!impl_->options.buckets.empty()) {
    std::set<std::string> input_symbols;
    for (const auto& i : impl_->inputs) input_symbols.insert(i.symbols.begin(), i.symbols.end());
    input_symbols.erase("");
    std::vector<IoInfo> outputs;
    for (const auto& o : g.outputs) outputs.push_back(output_info(g, o, input_symbols));
    impl_->buckets =
        std::make_unique<runtime::BucketRouter>(impl_->options.buckets, impl_->inputs, outputs);
  }
  if (impl_->options.fast_kernels && impl_->options.precision == Precision::Auto &&
      target.is_cpu() && !impl_->from_engine) {
    impl_->progress("auto precision (timing each layer at fp32, bf16 and int8)");
    runtime::AutoPrecisionOptions auto_options;
    auto_options.output_cosine = impl_->options.accuracy_budget;
    cpu::set_num_threads(impl_->options.threads);
    impl_->auto_result = runtime::choose_precisions(g, impl_->plan, impl_->calibration_inputs(),
                                                    auto_options, impl_->packed.get());
    impl_->precision_report = impl_->auto_result->explain();
    // The losing candidates' packed weights go with them.
    const auto prefixes = impl_->chosen_packed_prefixes();
    impl_->packed->keep_only([&](const std::string& key) {
      for (const auto& p : prefixes)
        if (key.rfind(p, 0) == 0) return true;
      return false;
    });
  }
  if (impl_->buckets && impl_->options.warm_buckets) {
    impl_->progress("plan each shape bucket (one run each)");
    warm_buckets();
  }
}

std::vector<std::string> Session::Impl::chosen_packed_prefixes() const {
  std::vector<std::string> out;
  const auto& nodes = model.graph.nodes;
  for (size_t k = 0; k < plan.by_node.size() && k < nodes.size(); ++k) {
    if (plan.by_node[k]) out.push_back(cpu::packed_key_prefix(nodes[k], plan.precision_by_node[k]));
  }
  return out;
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Session Session::open(const std::string& path, SessionOptions options) {
  if (engine::is_engine_file(path)) {
    Session session(load_engine(path, options));
    session.import_bucket_plans(session.impl_->engine_bucket_plans);
    return session;
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->source_path = path;
  impl->progress("import " + path);
  impl->model = onnx_import::import_file(path);
  return Session(std::move(impl));
}

Session Session::from_bytes(const std::string& bytes, SessionOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->model = onnx_import::import_bytes(bytes, "");
  impl->options = options;
  return Session(std::move(impl));
}

const std::vector<IoInfo>& Session::inputs() const {
  return impl_->inputs;
}
const std::vector<IoInfo>& Session::outputs() const {
  return impl_->outputs;
}
const ir::Graph& Session::graph() const {
  return impl_->model.graph;
}
const ir::Model& Session::model() const {
  return impl_->model;
}
std::vector<std::pair<std::string, int>> Session::passes_fired() const {
  std::map<std::string, int> counts;
  std::vector<std::string> order;
  // An engine's passes ran when it was made; its metadata names them.
  if (!impl_->optimize_report) return {};
  for (const auto& r : impl_->optimize_report->applied) {
    if (r.rewrites == 0) continue;
    if (counts[r.pass] == 0) order.push_back(r.pass);
    counts[r.pass] += r.rewrites;
  }
  std::vector<std::pair<std::string, int>> fired;
  for (const auto& p : order) fired.emplace_back(p, counts[p]);
  return fired;
}
std::string Session::optimization_report() const {
  return impl_->optimization_text;
}

LoadInfo Session::load_info() const {
  LoadInfo info;
  info.from_engine = impl_->from_engine;
  info.packed_reused = impl_->packed->reused();
  info.packed_fresh = impl_->packed->packed();
  info.engine_metadata = impl_->engine_metadata;
  return info;
}

MemoryStats Session::memory_stats() const {
  MemoryStats m;
  if (!impl_->memory) return m;
  const auto r = impl_->memory->report();
  m.arena_bytes = r.arena_bytes;
  m.planned_tensor_bytes = r.planned_tensor_bytes;
  m.planned_tensors = r.planned_tensors;
  m.in_place = r.in_place;
  m.plans = r.plans;
  m.pinned_plans = r.pinned;
  m.kept_plans = r.kept;
  return m;
}

std::map<std::string, int> Session::kernel_histogram() const {
  return impl_->plan.histogram;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32:
      return "fp32";
    case Precision::BF16:
      return "bf16";
    case Precision::INT8:
      return "int8";
    case Precision::Auto:
      return "auto";
    case Precision::FP16:
      return "fp16";
    case Precision::FP8:
      return "fp8";
  }
  return "?";
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::FP32;
  if (s == "bf16") return Precision::BF16;
  if (s == "int8") return Precision::INT8;
  if (s == "auto") return Precision::Auto;
  if (s == "fp16") return Precision::FP16;
  if (s == "fp8") return Precision::FP8;
  fail("unknown precision '" + s + "'; expected fp32, bf16, int8, auto, fp16 or fp8 (GPU only)");
}

std::vector<Value> Session::Impl::positional(
    const std::map<std::string, Value>& given,
    const std::map<std::string, DeviceTensor>& on_device) const {
  const auto& g = model.graph;
  std::set<std::string> known;
  for (const auto& i : g.inputs) known.insert(i.name);
  auto check_known = [&](const std::string& name) {
    if (!known.count(name)) {
      std::string names;
      for (const auto& i : inputs) names += (names.empty() ? "" : ", ") + i.name;
      fail("unknown input '" + name + "'; the model's inputs are: " + names);
    }
  };
  for (const auto& [name, v] : given) check_known(name);
  for (const auto& [name, v] : on_device) check_known(name);
  std::vector<Value> positional;
  for (const auto& i : g.inputs) {
    if (on_device.count(i.name)) {
      positional.push_back(Value::none());  // the device executor reads it from the binding
      continue;
    }
    auto it = given.find(i.name);
    if (it == given.end()) {
      auto init = g.initializers.find(i.name);
      if (init == g.initializers.end()) {
        const IoInfo info = io_info(i);
        if (info.kind == "optional") {
          positional.push_back(Value::none());
          continue;
        }
        fail("missing input '" + i.name + "' (" + std::string(dtype_name(info.dtype)) +
             (info.has_shape ? dims_to_string(info.dims) : "") + ")");
      }
      positional.push_back(Value::of(init->second));
      continue;
    }
    check_input(io_info(i), it->second);
    positional.push_back(it->second);
  }
  return positional;
}

std::vector<Value> Session::Impl::calibration_inputs() const {
  std::map<std::string, Value> given;
  for (const auto& info : inputs) {
    auto it = options.calibration_inputs.find(info.name);
    if (it != options.calibration_inputs.end()) {
      given[info.name] = Value::of(it->second);
      continue;
    }
    std::map<std::string, int64_t> dims;
    for (size_t d = 0; d < info.symbols.size(); ++d) {
      if (!info.symbols[d].empty() && !dims.count(info.symbols[d])) {
        dims[info.symbols[d]] = d == 0 ? 2 : 32;
      }
    }
    given[info.name] = Value::of(runtime::random_input(info, dims, 1234));
  }
  return positional(given);
}

std::vector<Value> Session::Impl::fp8_calibration_inputs() const {
  // Dynamic dims: the first of an input 8, the others 32; a named symbol takes one size for
  // every input that declares it.
  std::map<std::string, int64_t> sizes;
  std::map<std::string, Dims> shapes;
  for (const auto& info : inputs) {
    if (options.calibration_inputs.count(info.name) || !info.has_shape) continue;
    Dims d = info.dims;
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i] >= 0) continue;
      const std::string sym = i < info.symbols.size() ? info.symbols[i] : "";
      const int64_t want = i == 0 ? 8 : 32;
      d[i] = sym.empty() ? want : sizes.emplace(sym, want).first->second;
    }
    shapes[info.name] = d;
  }
  const auto tensors =
      runtime::make_valid_inputs(model.graph, inputs, shapes, options.calibration_inputs);
  std::map<std::string, Value> given;
  for (const auto& [name, t] : tensors) given[name] = Value::of(t);
  return positional(given);
}

std::vector<Value> Session::Impl::execute(const std::map<std::string, Value>& inputs,
                                          const runtime::NodeObserver* observer) const {
  std::vector<Value> in = positional(inputs);  // validates the inputs as given
  runtime::BucketRoute route;
  if (buckets) {
    route = buckets->route(inputs);
    if (route.kind == runtime::BucketRoute::Kind::Padded)
      in = positional(buckets->pad(inputs, route));
    (route.kind == runtime::BucketRoute::Kind::Exact    ? exact_runs
     : route.kind == runtime::BucketRoute::Kind::Padded ? padded_runs
                                                        : bucket_runs)++;
  }
  if (device) {
    // One CUDA graph per input signature: a padded run replays its bucket's graph.
    auto outputs = device->run(in, {});
    if (route.kind == runtime::BucketRoute::Kind::Padded) buckets->slice(outputs, route);
    return outputs;
  }
  const bool pinned = route.kind != runtime::BucketRoute::Kind::Exact && route.pinned;
  cpu::set_num_threads(options.threads);
  const cpu::ShapePlanScope plan_policy({options.max_exact_plans, pinned});
  std::unique_ptr<runtime::RunMemory> run_memory;
  if (memory) {
    run_memory = memory->begin(in, pinned);
    if (pinned) {
      std::lock_guard<std::mutex> lock(bucket_mu);
      bucket_signatures.emplace(runtime::MemoryPlanner::signature(in), route.run);
    }
  }
  auto outputs =
      runtime::run_graph(model.graph, in, nullptr, plan.by_node.empty() ? nullptr : &plan.by_node,
                         run_memory.get(), observer);
  if (route.kind == runtime::BucketRoute::Kind::Padded) buckets->slice(outputs, route);
  return outputs;
}

std::vector<Value> Session::run(const std::map<std::string, Value>& inputs) const {
  return impl_->execute(inputs, nullptr);
}

std::vector<Value> Session::run_profiled(const std::map<std::string, Value>& inputs,
                                         std::vector<NodeTime>& times) const {
  if (impl_->device) return impl_->device->run_profiled(impl_->positional(inputs), times);
  const auto& g = impl_->model.graph;
  times.clear();
  // Nodes run one after another, so a node's time is the gap since the previous one finished.
  auto last = std::chrono::steady_clock::now();
  const runtime::NodeObserver observe = [&](size_t k, const std::vector<const Value*>&,
                                            const std::vector<Value>&) {
    const auto now = std::chrono::steady_clock::now();
    const ir::Node& n = g.nodes[k];
    const ops::Kernel* kernel = impl_->plan.by_node.empty() ? nullptr : impl_->plan.by_node[k];
    times.push_back(NodeTime{n.name.empty() ? n.outputs[0] : n.name,
                             (n.domain.empty() ? "" : n.domain + ".") + n.op_type,
                             kernel ? kernel->name() : "reference",
                             std::chrono::duration<double, std::milli>(now - last).count()});
    last = now;
  };
  return impl_->execute(inputs, &observe);
}

std::vector<Session::OpTime> Session::by_op(const std::vector<NodeTime>& times) {
  std::map<std::pair<std::string, std::string>, OpTime> sums;
  for (const auto& t : times) {
    OpTime& e = sums[{t.op, t.kernel}];
    e.op = t.op;
    e.kernel = t.kernel;
    e.ms += t.ms;
    e.nodes++;
  }
  std::vector<OpTime> rows;
  for (auto& [key, e] : sums) rows.push_back(std::move(e));
  std::stable_sort(rows.begin(), rows.end(),
                   [](const OpTime& x, const OpTime& y) { return x.ms > y.ms; });
  return rows;
}

std::vector<Value> Session::run_bound(
    const std::map<std::string, Value>& inputs,
    const std::map<std::string, DeviceTensor>& device_inputs,
    const std::map<std::string, DeviceTensor>& device_outputs) const {
  check(impl_->device != nullptr,
        "device-bound inputs and outputs need target cuda, not " + impl_->options.target);
  for (const auto& [name, t] : device_inputs) {
    for (const auto& info : impl_->inputs) {
      if (info.name != name || !info.has_shape) continue;
      check(t.dims.size() == info.dims.size(), "device input '" + name + "': expected rank " +
                                                   std::to_string(info.dims.size()) +
                                                   ", got shape " + dims_to_string(t.dims));
      for (size_t d = 0; d < t.dims.size(); ++d) {
        check(info.dims[d] < 0 || info.dims[d] == t.dims[d],
              "device input '" + name + "': expected shape " + dims_to_string(info.dims) +
                  ", got " + dims_to_string(t.dims));
      }
    }
  }
  std::set<std::string> output_names;
  for (const auto& o : impl_->outputs) output_names.insert(o.name);
  for (const auto& [name, t] : device_outputs) {
    check(output_names.count(name) != 0,
          "device output '" + name + "' is not an output of the model");
  }
  runtime::DeviceIo io{device_inputs, device_outputs};
  return impl_->device->run(impl_->positional(inputs, device_inputs), io);
}

std::string Session::device_report() const {
  return impl_->device ? impl_->device->report() : "";
}

std::string Session::precision_report() const {
  return impl_->precision_report;
}

std::vector<Tensor> Session::run_tensors(const std::map<std::string, Tensor>& inputs) const {
  std::map<std::string, Value> in;
  for (const auto& [n, t] : inputs) in[n] = Value::of(t);
  std::vector<Tensor> out;
  for (auto& v : run(in)) {
    check(v.is_tensor(), "an output is not a tensor; use Session::run");
    out.push_back(std::move(v.tensor));
  }
  return out;
}

std::vector<std::map<std::string, int64_t>> Session::warm_buckets(
    const std::map<std::string, int64_t>& other_sizes) const {
  if (!impl_->buckets) return {};
  const auto all = impl_->buckets->combinations(other_sizes);
  for (const auto& sizes : all) {
    const auto inputs = runtime::make_valid_inputs(
        impl_->model.graph, impl_->inputs, runtime::input_dims_for(impl_->inputs, sizes), {});
    std::map<std::string, Value> feeds;
    for (const auto& [name, t] : inputs) feeds[name] = Value::of(t);
    impl_->execute(feeds, nullptr);
  }
  return all;
}

std::vector<BucketPlan> Session::bucket_plans() const {
  std::vector<BucketPlan> result;
  if (!impl_->memory) return result;
  std::lock_guard<std::mutex> lock(impl_->bucket_mu);
  for (const auto& [signature, sizes] : impl_->bucket_signatures) {
    const auto plan = impl_->memory->find(signature);
    if (!plan) continue;  // its first run has not finished
    BucketPlan b;
    b.sizes = sizes;
    b.arena_bytes = plan->arena_bytes;
    b.in_place = plan->in_place;
    for (const auto& [key, t] : plan->tensors) {
      b.tensors.push_back({key.first, key.second, t.bytes, t.offset});
    }
    b.expected_views.assign(plan->expected_views.begin(), plan->expected_views.end());
    result.push_back(std::move(b));
  }
  return result;
}

void Session::import_bucket_plans(const std::vector<BucketPlan>& plans) const {
  if (!impl_->memory) return;  // memory planning is off: nothing to place
  for (const auto& b : plans) {
    // The signature of inputs of the bucket's sizes (zeros: only dtypes and dims count).
    std::map<std::string, Value> feeds;
    for (const auto& [name, dims] : runtime::input_dims_for(impl_->inputs, b.sizes)) {
      auto info = std::find_if(impl_->inputs.begin(), impl_->inputs.end(),
                               [&](const IoInfo& i) { return i.name == name; });
      feeds[name] = Value::of(Tensor(info->dtype, dims));
    }
    const std::string signature = runtime::MemoryPlanner::signature(impl_->positional(feeds));
    runtime::MemoryPlan plan;
    plan.arena_bytes = b.arena_bytes;
    plan.in_place = b.in_place;
    for (const auto& t : b.tensors) plan.tensors[{t.node, t.output}] = {t.bytes, t.offset};
    plan.expected_views.insert(b.expected_views.begin(), b.expected_views.end());
    impl_->memory->import(signature, std::move(plan));
    std::lock_guard<std::mutex> lock(impl_->bucket_mu);
    impl_->bucket_signatures.emplace(signature, b.sizes);
  }
}

BucketStats Session::bucket_stats() const {
  return BucketStats{impl_->bucket_runs.load(), impl_->padded_runs.load(),
                     impl_->exact_runs.load()};
}

std::string Session::buckets_report() const {
  return impl_->buckets ? impl_->buckets->report() : "";
}

}  // namespace kpt
