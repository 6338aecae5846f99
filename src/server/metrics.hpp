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
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound, then +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};  // sum in millionths, so that it stays an integer
};

// The executions of one batch size and their cumulative phase times (Triton's batch_stats).
struct BatchSizeStats {
  uint64_t executions = 0;
  uint64_t compute_input_ns = 0, compute_infer_ns = 0, compute_output_ns = 0;
};

// Durations are kept in nanoseconds (Triton's statistics extension) and rendered in
// microseconds for Prometheus. Per-request figures follow Triton: a request of a batch counts
// the whole batch's compute times.
struct ModelMetrics {
  ModelMetrics();
  std::atomic<uint64_t> request_success{0}, request_failure{0};
  std::atomic<uint64_t> success_duration_ns{0}, failure_duration_ns{0};  // arrival to answer
  std::atomic<uint64_t> queue_duration_ns{0};  // over queue_latency_seconds.count() requests
  std::atomic<uint64_t> executed_requests{0};
  std::atomic<uint64_t> compute_input_ns{0}, compute_infer_ns{0}, compute_output_ns{0};
  std::atomic<int64_t> pending_requests{0};
  std::atomic<uint64_t> rejected_queue_full{0}, timed_out{0}, cancelled{0};
  std::atomic<int64_t> last_inference_ms{0};  // Unix time of the last execution, 0: none yet
  Histogram request_latency_seconds;
  Histogram queue_latency_seconds;

  // One model execution over `requests` requests holding `batch_size` rows in all.
  void record_execution(int64_t batch_size, uint64_t requests, uint64_t input_ns, uint64_t infer_ns,
                        uint64_t output_ns);
  std::map<int64_t, BatchSizeStats> batch_stats() const;
  // Executions, and inferences (a batch of N rows counts N), over all batch sizes.
  std::pair<uint64_t, uint64_t> execution_and_inference_counts() const;

 private:
  mutable std::mutex batch_mutex_;
  std::map<int64_t, BatchSizeStats> batch_stats_;
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
