#pragma once
// Prometheus metrics in the text exposition format. Per-model counters carry Triton's names
// and labels (nv_inference_*, model/version) so that existing Triton dashboards work; the
// histograms and process figures that Triton does not have use kpt_ names.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kpt::server {

// Fixed buckets, lock-free observation.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound, then +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};  // sum in millionths, so that it stays an integer
};

struct ModelMetrics {
  ModelMetrics();
  std::atomic<uint64_t> request_success{0}, request_failure{0};
  std::atomic<uint64_t> inference_count{0}, exec_count{0};
  std::atomic<uint64_t> request_duration_us{0}, queue_duration_us{0};
  std::atomic<uint64_t> compute_input_duration_us{0}, compute_infer_duration_us{0},
      compute_output_duration_us{0};
  std::atomic<int64_t> pending_requests{0};
  std::atomic<uint64_t> rejected_queue_full{0}, timed_out{0}, cancelled{0};
  Histogram request_latency_seconds;
  Histogram queue_latency_seconds;
  Histogram batch_size;
};

class Metrics {
 public:
  std::shared_ptr<ModelMetrics> model(const std::string& name, const std::string& version);
  void count_http(int status);
  std::atomic<int64_t> requests_in_flight{0};
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<ModelMetrics>> models_;
  std::array<std::atomic<uint64_t>, 600> http_by_status_{};
};

// Resident set size of this process, from /proc/self/statm (0 where unavailable).
uint64_t resident_memory_bytes();

}  // namespace kpt::server
