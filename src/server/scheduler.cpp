#include "server/scheduler.hpp"

#include <algorithm>

#include "kpt/error.hpp"
#include "server/batching.hpp"

namespace kpt::server {

namespace {

uint64_t micros(Clock::duration d) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

uint64_t nanos(Clock::duration d) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

}  // namespace

Scheduler::Scheduler(std::vector<std::shared_ptr<const Session>> instances,
                     const ModelConfig& config, std::shared_ptr<ModelMetrics> metrics)
    : instances_(std::move(instances)), config_(config), metrics_(std::move(metrics)) {
  for (size_t i = 0; i < instances_.size(); ++i) idle_instances_.push_back(i);
  for (size_t i = 0; i < instances_.size(); ++i) workers_.emplace_back([this] { worker(); });
}

Scheduler::~Scheduler() {
  shutdown();
}

Scheduler::Submit Scheduler::submit(std::unique_ptr<InferJob>& job) {
  size_t instance = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Submit::ShuttingDown;
    // Only when nothing waits: an inline run must not overtake queued requests.
    bool run_here = inline_allowed() && queue_.empty() && !idle_instances_.empty();
    if (!run_here) {
      if (static_cast<int64_t>(queue_.size()) >= config_.max_queue_size) return Submit::QueueFull;
      job->enqueued = Clock::now();
      queue_.push_back(std::move(job));
      metrics_->pending_requests.fetch_add(1);
    } else {
      instance = idle_instances_.back();
      idle_instances_.pop_back();
    }
  }
  if (job == nullptr) {
    cv_.notify_one();
    return Submit::Queued;
  }
  job->enqueued = Clock::now();
  std::vector<std::unique_ptr<InferJob>> one;
  one.push_back(std::move(job));
  execute(*instances_[instance], std::move(one));
  bool waiting;
  {
    std::lock_guard lock(mutex_);
    idle_instances_.push_back(instance);
    waiting = !queue_.empty();
  }
  // Requests queued meanwhile found no idle instance; a worker takes them now.
  if (waiting) cv_.notify_all();
  return Submit::RanInline;
}

bool Scheduler::inline_allowed() const {
  int64_t average = average_exec_ns_.load(std::memory_order_relaxed);
  return !config_.dynamic_batching && average >= 0 && average < kInlineMaxNs;
}

void Scheduler::note_execution_time(Clock::duration d) {
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  int64_t average = average_exec_ns_.load(std::memory_order_relaxed);
  // Racy read-modify-write by concurrent instances only blurs the average a little.
  average_exec_ns_.store(average < 0 ? ns : average + (ns - average) / 8,
                         std::memory_order_relaxed);
}

void Scheduler::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
}

bool Scheduler::is_preferred(int64_t total) const {
  return std::find(config_.preferred_batch_sizes.begin(), config_.preferred_batch_sizes.end(),
                   total) != config_.preferred_batch_sizes.end();
}

std::vector<std::unique_ptr<InferJob>> Scheduler::take_batch(std::unique_lock<std::mutex>& lock) {
  std::vector<std::unique_ptr<InferJob>> batch;
  batch.push_back(std::move(queue_.front()));
  queue_.pop_front();
  if (!config_.dynamic_batching || batch[0]->batch <= 0) return batch;
  int64_t total = batch[0]->batch;
  Clock::time_point until =
      batch[0]->enqueued + std::chrono::microseconds(config_.max_queue_delay_us);
  for (;;) {
    for (auto it = queue_.begin(); it != queue_.end() && total < config_.max_batch_size;) {
      if ((*it)->batch > 0 && total + (*it)->batch <= config_.max_batch_size &&
          batch_compatible(batch[0]->inputs, (*it)->inputs)) {
        total += (*it)->batch;
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    // Preferred sizes end the wait early; otherwise wait for more until the delay of the
    // oldest request is spent (a zero delay batches only what is already queued).
    if (total >= config_.max_batch_size || is_preferred(total) || stopping_ ||
        Clock::now() >= until)
      break;
    cv_.wait_until(lock, until);
  }
  return batch;
}

void Scheduler::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] {
      return (stopping_ && queue_.empty()) || (!queue_.empty() && !idle_instances_.empty());
    });
    if (queue_.empty()) return;  // stopping and drained
    size_t instance = idle_instances_.back();
    idle_instances_.pop_back();
    auto batch = take_batch(lock);
    metrics_->pending_requests.fetch_sub(static_cast<int64_t>(batch.size()));
    // Another worker may take what this one left behind.
    if (!queue_.empty()) cv_.notify_one();
    lock.unlock();
    execute(*instances_[instance], std::move(batch));
    lock.lock();
    idle_instances_.push_back(instance);
  }
}

void Scheduler::execute(const Session& session, std::vector<std::unique_ptr<InferJob>> jobs) {
  Clock::time_point start = Clock::now();
  // Requests whose client left or whose time ran out are answered without running.
  std::vector<std::unique_ptr<InferJob>> live;
  for (auto& job : jobs) {
    metrics_->queue_duration_ns.fetch_add(nanos(start - job->enqueued));
    metrics_->queue_latency_seconds.observe(
        std::chrono::duration<double>(start - job->enqueued).count());
    if (job->cancelled && job->cancelled->load()) {
      metrics_->cancelled.fetch_add(1);
      job->done({499, "the client closed the connection before the request ran", {}});
    } else if (start > job->deadline) {
      metrics_->timed_out.fetch_add(1);
      job->done({503,
                 "the request waited in the queue longer than its timeout of " +
                     std::to_string(micros(job->deadline - job->enqueued)) + " us",
                 {}});
    } else {
      live.push_back(std::move(job));
    }
  }
  if (live.empty()) return;
  auto run_one = [&](InferJob& job) {
    Clock::time_point t0 = Clock::now();
    InferResult r;
    try {
      r.outputs = session.run_tensors(job.inputs);
    } catch (const std::exception& e) {
      r.status = 400;
      r.error = e.what();
    }
    Clock::duration took = Clock::now() - t0;
    note_execution_time(took);
    metrics_->record_execution(std::max<int64_t>(1, job.batch), 1, 0, nanos(took), 0);
    job.done(std::move(r));
  };
  if (live.size() == 1) {
    run_one(*live[0]);
    return;
  }
  std::vector<std::vector<Tensor>> split(live.size());
  int64_t total = 0;
  try {
    Clock::time_point t0 = Clock::now();
    std::vector<const std::map<std::string, Tensor>*> parts;
    for (const auto& job : live) {
      parts.push_back(&job->inputs);
      total += job->batch;
    }
    auto inputs = concat_batch(parts);
    Clock::time_point t1 = Clock::now();
    auto outputs = session.run_tensors(inputs);
    Clock::time_point t2 = Clock::now();
    for (const auto& out : outputs)
      check(out.rank() > 0 && out.dims()[0] == total, "output " + out.describe() +
                                                          " does not have the batch of " +
                                                          std::to_string(total) + " rows");
    int64_t row = 0;
    for (size_t k = 0; k < live.size(); ++k) {
      for (const auto& out : outputs) split[k].push_back(slice_rows(out, row, live[k]->batch));
      row += live[k]->batch;
    }
    note_execution_time(t2 - t1);
    metrics_->record_execution(total, live.size(), nanos(t1 - t0), nanos(t2 - t1),
                               nanos(Clock::now() - t2));
  } catch (const std::exception&) {
    // One bad request (or a model whose outputs do not follow dim 0) must not fail the
    // others: run each alone, so each gets its own result or error.
    for (auto& job : live) run_one(*job);
    return;
  }
  for (size_t k = 0; k < live.size(); ++k) live[k]->done({200, "", std::move(split[k])});
}

}  // namespace kpt::server
