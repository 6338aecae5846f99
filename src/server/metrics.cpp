#include "server/metrics.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "kpt/tensor.hpp"

namespace kpt::server {

namespace {

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

std::vector<double> batch_buckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256};
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string format_double(double v) {
  if (std::isinf(v)) return "+Inf";
  char buf[32];
  snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                      double sum, uint64_t count) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += counts[i];
    double le = i < bounds.size() ? bounds[i] : INFINITY;
    out += name + "_bucket{" + labels + (labels.empty() ? "" : ",") + "le=\"" + format_double(le) +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  std::string l = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + l + " " + format_double(sum) + "\n";
  out += name + "_count" + l + " " + std::to_string(count) + "\n";
}

// kpt_batch_size, from the exact executions per batch size.
void render_batch_sizes(std::string& out, const std::string& labels, const ModelMetrics& m) {
  std::vector<double> bounds = batch_buckets();
  std::vector<uint64_t> counts(bounds.size() + 1);
  double sum = 0;
  uint64_t count = 0;
  for (const auto& [size, b] : m.batch_stats()) {
    size_t i = 0;
    while (i < bounds.size() && static_cast<double>(size) > bounds[i]) ++i;
    counts[i] += b.executions;
    sum += static_cast<double>(size) * static_cast<double>(b.executions);
    count += b.executions;
  }
  render_histogram(out, "kpt_batch_size", labels, bounds, counts, sum, count);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::max(0.0, value) * 1e6),
                        std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::vector<uint64_t> counts(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i)
    counts[i] = counts_[i].load(std::memory_order_relaxed);
  render_histogram(out, name, labels, bounds_, counts,
                   static_cast<double>(sum_micros_.load()) / 1e6, count_.load());
}

ModelMetrics::ModelMetrics()
    : request_latency_seconds(latency_buckets()), queue_latency_seconds(latency_buckets()) {}

void ModelMetrics::record_execution(int64_t batch_size, uint64_t requests, uint64_t input_ns,
                                    uint64_t infer_ns, uint64_t output_ns) {
  executed_requests.fetch_add(requests, std::memory_order_relaxed);
  compute_input_ns.fetch_add(requests * input_ns, std::memory_order_relaxed);
  compute_infer_ns.fetch_add(requests * infer_ns, std::memory_order_relaxed);
  compute_output_ns.fetch_add(requests * output_ns, std::memory_order_relaxed);
  last_inference_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count(),
                          std::memory_order_relaxed);
  std::lock_guard lock(batch_mutex_);
  BatchSizeStats& b = batch_stats_[batch_size];
  b.executions += 1;
  b.compute_input_ns += input_ns;
  b.compute_infer_ns += infer_ns;
  b.compute_output_ns += output_ns;
}

std::map<int64_t, BatchSizeStats> ModelMetrics::batch_stats() const {
  std::lock_guard lock(batch_mutex_);
  return batch_stats_;
}

std::pair<uint64_t, uint64_t> ModelMetrics::execution_and_inference_counts() const {
  std::lock_guard lock(batch_mutex_);
  uint64_t executions = 0, inferences = 0;
  for (const auto& [size, b] : batch_stats_) {
    executions += b.executions;
    inferences += static_cast<uint64_t>(size) * b.executions;
  }
  return {executions, inferences};
}

std::shared_ptr<ModelMetrics> Metrics::model(const std::string& name, const std::string& version) {
  std::lock_guard lock(mutex_);
  auto& m = models_[{name, version}];
  if (!m) m = std::make_shared<ModelMetrics>();
  return m;
}

void Metrics::count_http(int status) {
  if (status >= 0 && status < static_cast<int>(http_by_status_.size()))
    http_by_status_[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t resident_memory_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(8192);
  auto labels_of = [](const auto& key) {
    return "model=\"" + escape_label(key.first) + "\",version=\"" + escape_label(key.second) + "\"";
  };
  using Value = uint64_t (*)(const ModelMetrics&);
  struct Counter {
    const char* name;
    const char* help;
    Value value;
  };
  static const Counter counters[] = {
      {"nv_inference_request_success", "Number of successful inference requests, all batch sizes",
       [](const ModelMetrics& m) { return m.request_success.load(); }},
      {"nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
       [](const ModelMetrics& m) { return m.request_failure.load(); }},
      {"nv_inference_count", "Number of inferences performed (a batch of N counts N)",
       [](const ModelMetrics& m) { return m.execution_and_inference_counts().second; }},
      {"nv_inference_exec_count", "Number of model executions performed (a batch counts once)",
       [](const ModelMetrics& m) { return m.execution_and_inference_counts().first; }},
      {"nv_inference_request_duration_us", "Cumulative inference request duration in microseconds",
       [](const ModelMetrics& m) {
         return (m.success_duration_ns.load() + m.failure_duration_ns.load()) / 1000;
       }},
      {"nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds",
       [](const ModelMetrics& m) { return m.queue_duration_ns.load() / 1000; }},
      {"nv_inference_compute_input_duration_us",
       "Cumulative compute input duration in microseconds",
       [](const ModelMetrics& m) { return m.compute_input_ns.load() / 1000; }},
      {"nv_inference_compute_infer_duration_us",
       "Cumulative compute inference duration in microseconds",
       [](const ModelMetrics& m) { return m.compute_infer_ns.load() / 1000; }},
      {"nv_inference_compute_output_duration_us",
       "Cumulative inference compute output duration in microseconds",
       [](const ModelMetrics& m) { return m.compute_output_ns.load() / 1000; }},
      {"kpt_inference_rejected_queue_full",
       "Requests refused with 503 because the model's queue was full",
       [](const ModelMetrics& m) { return m.rejected_queue_full.load(); }},
      {"kpt_inference_timed_out", "Requests whose queue time exceeded their timeout",
       [](const ModelMetrics& m) { return m.timed_out.load(); }},
      {"kpt_inference_cancelled", "Requests dropped because the client went away",
       [](const ModelMetrics& m) { return m.cancelled.load(); }},
  };
  for (const auto& c : counters) {
    header(out, c.name, "counter", c.help);
    for (const auto& [key, m] : models_)
      out += std::string(c.name) + "{" + labels_of(key) + "} " + std::to_string(c.value(*m)) + "\n";
  }
  header(out, "nv_inference_pending_request_count", "gauge",
         "Instantaneous number of pending requests awaiting execution");
  for (const auto& [key, m] : models_)
    out += "nv_inference_pending_request_count{" + labels_of(key) + "} " +
           std::to_string(m->pending_requests.load()) + "\n";
  header(out, "kpt_request_duration_seconds", "histogram",
         "Inference request latency from arrival to response");
  for (const auto& [key, m] : models_)
    m->request_latency_seconds.render(out, "kpt_request_duration_seconds", labels_of(key));
  header(out, "kpt_queue_duration_seconds", "histogram",
         "Time inference requests waited in the queue");
  for (const auto& [key, m] : models_)
    m->queue_latency_seconds.render(out, "kpt_queue_duration_seconds", labels_of(key));
  header(out, "kpt_batch_size", "histogram", "Batch size of each model execution");
  for (const auto& [key, m] : models_) render_batch_sizes(out, labels_of(key), *m);
  header(out, "kpt_requests_in_flight", "gauge", "HTTP requests received and not yet answered");
  out += "kpt_requests_in_flight " + std::to_string(requests_in_flight.load()) + "\n";
  header(out, "kpt_http_responses", "counter", "HTTP responses sent, by status code");
  for (size_t s = 0; s < http_by_status_.size(); ++s) {
    uint64_t v = http_by_status_[s].load(std::memory_order_relaxed);
    if (v)
      out += "kpt_http_responses{code=\"" + std::to_string(s) + "\"} " + std::to_string(v) + "\n";
  }
  header(out, "kpt_process_resident_memory_bytes", "gauge",
         "Resident memory of the server process");
  out += "kpt_process_resident_memory_bytes " + std::to_string(resident_memory_bytes()) + "\n";
  header(out, "kpt_tensor_memory_bytes", "gauge",
         "Tensor storage the server holds now (weights mapped from files excluded)");
  out += "kpt_tensor_memory_bytes " + std::to_string(live_tensor_bytes()) + "\n";
  return out;
}

}  // namespace kpt::server
