#pragma once
// Runs inference requests of one model version on its instances: one worker thread per
// instance, all fed by one bounded queue. With dynamic batching a worker takes the first
// queued request and gathers batch-compatible ones until the batch reaches a preferred or
// the maximum size or the first request has waited the maximum queue delay, then runs the
// concatenation once and splits the outputs.
// A cheap model that does not batch dynamically runs a request at once on the submitting (I/O)
// thread when nothing is queued and an instance is idle: handing a few microseconds of work to
// a worker would cost two thread wake-ups, more than the work itself.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kpt/session.hpp"
#include "server/metrics.hpp"
#include "server/model_config.hpp"

namespace kpt::server {

using Clock = std::chrono::steady_clock;

struct InferResult {
  int status = 200;  // HTTP status: 200, or the error's code
  std::string error;
  std::vector<Tensor> outputs;  // in the model's output order
};

struct InferJob {
  std::map<std::string, Tensor> inputs;
  int64_t batch = 0;  // dim 0 of the inputs when the model batches, else 0
  Clock::time_point enqueued;
  Clock::time_point deadline = Clock::time_point::max();
  std::shared_ptr<std::atomic<bool>> cancelled;  // set when the client has gone away
  std::function<void(InferResult)> done;         // called exactly once, on a worker thread
};

class Scheduler {
 public:
  Scheduler(std::vector<std::shared_ptr<const Session>> instances, const ModelConfig& config,
            std::shared_ptr<ModelMetrics> metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Submit { Queued, RanInline, QueueFull, ShuttingDown };
  // Takes the job only when it returns Queued or RanInline (its `done` has then been called).
  Submit submit(std::unique_ptr<InferJob>& job);
  // Executions shorter than this (a running average) let requests run on the submitting thread.
  static constexpr int64_t kInlineMaxNs = 200'000;
  // Stops taking jobs, lets the workers finish every queued one, and joins them.
  void shutdown();

 private:
  void worker();
  std::vector<std::unique_ptr<InferJob>> take_batch(std::unique_lock<std::mutex>& lock);
  void execute(const Session& session, std::vector<std::unique_ptr<InferJob>> jobs);
  bool is_preferred(int64_t total) const;
  bool inline_allowed() const;
  void note_execution_time(Clock::duration d);

  std::vector<std::shared_ptr<const Session>> instances_;
  ModelConfig config_;
  std::shared_ptr<ModelMetrics> metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<InferJob>> queue_;
  // Instances not running anything: workers and inline runs each take one while they run.
  std::vector<size_t> idle_instances_;
  // Running average of one execution's wall time; -1 until the first execution, so that
  // requests go through the workers until the model is known to be cheap.
  std::atomic<int64_t> average_exec_ns_{-1};
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kpt::server
