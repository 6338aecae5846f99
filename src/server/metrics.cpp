#include "server/metrics.hpp"

#include <unistd.h>

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
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += name + "_bucket{" + labels + (labels.empty() ? "" : ",") + "le=\"" + format_double(le) +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  std::string l = labels.empty() ? "" : "{" + labels + "}";
  out +=
      name + "_sum" + l + " " + format_double(static_cast<double>(sum_micros_.load()) / 1e6) + "\n";
  out += name + "_count" + l + " " + std::to_string(count_.load()) + "\n";
}

ModelMetrics::ModelMetrics()
    : request_latency_seconds(latency_buckets()),
      queue_latency_seconds(latency_buckets()),
      batch_size(batch_buckets()) {}

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
  struct Counter {
    const char* name;
    const char* type;
    const char* help;
    std::atomic<uint64_t> ModelMetrics::*field;
  };
  static const Counter counters[] = {
      {"nv_inference_request_success", "counter",
       "Number of successful inference requests, all batch sizes", &ModelMetrics::request_success},
      {"nv_inference_request_failure", "counter",
       "Number of failed inference requests, all batch sizes", &ModelMetrics::request_failure},
      {"nv_inference_count", "counter", "Number of inferences performed (a batch of N counts N)",
       &ModelMetrics::inference_count},
      {"nv_inference_exec_count", "counter",
       "Number of model executions performed (a batch counts once)", &ModelMetrics::exec_count},
      {"nv_inference_request_duration_us", "counter",
       "Cumulative inference request duration in microseconds", &ModelMetrics::request_duration_us},
      {"nv_inference_queue_duration_us", "counter",
       "Cumulative inference queuing duration in microseconds", &ModelMetrics::queue_duration_us},
      {"nv_inference_compute_input_duration_us", "counter",
       "Cumulative compute input duration in microseconds",
       &ModelMetrics::compute_input_duration_us},
      {"nv_inference_compute_infer_duration_us", "counter",
       "Cumulative compute inference duration in microseconds",
       &ModelMetrics::compute_infer_duration_us},
      {"nv_inference_compute_output_duration_us", "counter",
       "Cumulative inference compute output duration in microseconds",
       &ModelMetrics::compute_output_duration_us},
      {"kpt_inference_rejected_queue_full", "counter",
       "Requests refused with 503 because the model's queue was full",
       &ModelMetrics::rejected_queue_full},
      {"kpt_inference_timed_out", "counter", "Requests whose queue time exceeded their timeout",
       &ModelMetrics::timed_out},
      {"kpt_inference_cancelled", "counter", "Requests dropped because the client went away",
       &ModelMetrics::cancelled},
  };
  auto labels_of = [](const auto& key) {
    return "model=\"" + escape_label(key.first) + "\",version=\"" + escape_label(key.second) + "\"";
  };
  for (const auto& c : counters) {
    header(out, c.name, c.type, c.help);
    for (const auto& [key, m] : models_)
      out += std::string(c.name) + "{" + labels_of(key) + "} " +
             std::to_string(((*m).*(c.field)).load()) + "\n";
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
  for (const auto& [key, m] : models_) m->batch_size.render(out, "kpt_batch_size", labels_of(key));
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
