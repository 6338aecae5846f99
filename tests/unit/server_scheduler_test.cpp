// The scheduler's choice between running a request on the submitting thread and queueing it
// for a worker: a cheap model without dynamic batching runs inline once its cost is known, a
// batching model never does, and both count their executions the same way.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "kpt/session.hpp"
#include "server/scheduler.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt::server {
namespace {

// What a job's `done` saw: how often it was called, on which thread, with what.
struct Completion {
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  std::thread::id thread;
  InferResult result;

  void wait() {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return calls > 0; });
  }
};

std::unique_ptr<InferJob> add_job(float value, int64_t batch,
                                  const std::shared_ptr<Completion>& completion) {
  auto job = std::make_unique<InferJob>();
  Tensor x = Tensor::uninitialized(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) x.data<float>()[i] = value + static_cast<float>(i);
  job->inputs.emplace("x", std::move(x));
  job->batch = batch;
  job->done = [completion](InferResult r) {
    std::lock_guard lock(completion->mutex);
    completion->thread = std::this_thread::get_id();
    completion->result = std::move(r);
    ++completion->calls;
    completion->cv.notify_all();
  };
  return job;
}

std::vector<std::shared_ptr<const Session>> add_instance() {
  return {std::make_shared<const Session>(Session::from_bytes(testing::add_model_bytes(), {}))};
}

void expect_doubled(const InferResult& r, float value) {
  ASSERT_EQ(r.status, 200) << r.error;
  ASSERT_EQ(r.outputs.size(), 1u);
  for (int i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(r.outputs[0].data<float>()[i], 2 * (value + static_cast<float>(i)));
}

TEST(ServerScheduler, CheapModelRunsInlineOnceItsCostIsKnown) {
  auto metrics = std::make_shared<ModelMetrics>();
  Scheduler scheduler(add_instance(), ModelConfig{}, metrics);
  // The first request goes to the worker: the model's cost is not known yet.
  auto first = std::make_shared<Completion>();
  auto job = add_job(1, 0, first);
  ASSERT_EQ(scheduler.submit(job), Scheduler::Submit::Queued);
  first->wait();
  EXPECT_NE(first->thread, std::this_thread::get_id());
  expect_doubled(first->result, 1);
  // Once its running average says microseconds, requests run here and are answered before
  // submit returns. Not every one: the worker hands its instance back just after answering,
  // and on a loaded machine a preempted run can lift the average for a while; those queue.
  uint64_t queued = 1, ran_here = 0;
  for (int k = 0; k < 500 && ran_here < 5; ++k) {
    auto later = std::make_shared<Completion>();
    float value = static_cast<float>(k);
    job = add_job(value, 0, later);
    Scheduler::Submit how = scheduler.submit(job);
    EXPECT_EQ(job, nullptr);
    if (how == Scheduler::Submit::RanInline) {
      ++ran_here;
      EXPECT_EQ(later->calls, 1);
      EXPECT_EQ(later->thread, std::this_thread::get_id());
    } else {
      ASSERT_EQ(how, Scheduler::Submit::Queued);
      ++queued;
      later->wait();
    }
    expect_doubled(later->result, value);
  }
  EXPECT_EQ(ran_here, 5u);
  EXPECT_EQ(metrics->execution_and_inference_counts(),
            (std::pair<uint64_t, uint64_t>{queued + ran_here, queued + ran_here}));
  EXPECT_EQ(metrics->pending_requests.load(), 0);
  EXPECT_EQ(metrics->queue_latency_seconds.count(), queued + ran_here);
}

TEST(ServerScheduler, DynamicBatchingNeverRunsInline) {
  ModelConfig config;
  config.max_batch_size = 4;
  config.dynamic_batching = true;
  auto metrics = std::make_shared<ModelMetrics>();
  Scheduler scheduler(add_instance(), config, metrics);
  for (int k = 0; k < 4; ++k) {
    auto done = std::make_shared<Completion>();
    auto job = add_job(static_cast<float>(k), 2, done);
    ASSERT_EQ(scheduler.submit(job), Scheduler::Submit::Queued);
    done->wait();
    EXPECT_NE(done->thread, std::this_thread::get_id());
    expect_doubled(done->result, static_cast<float>(k));
  }
  auto [executions, rows] = metrics->execution_and_inference_counts();
  EXPECT_EQ(rows, 8u);
  EXPECT_EQ(executions, 4u);  // one at a time: nothing else was queued to batch with
}

TEST(ServerScheduler, ShutdownRefusesNewRequests) {
  auto metrics = std::make_shared<ModelMetrics>();
  Scheduler scheduler(add_instance(), ModelConfig{}, metrics);
  scheduler.shutdown();
  auto done = std::make_shared<Completion>();
  auto job = add_job(0, 0, done);
  EXPECT_EQ(scheduler.submit(job), Scheduler::Submit::ShuttingDown);
  EXPECT_NE(job, nullptr);  // not taken
  EXPECT_EQ(done->calls, 0);
}

}  // namespace
}  // namespace kpt::server
