#pragma once
// Per-shape kernel state (oneDNN primitives made for one input shape) follows the session's
// plan policy, like its memory plans: shapes of shape buckets stay (pinned), other shapes are
// kept for the most recent `capacity` ones, so a stream of distinct lengths cannot grow a
// kernel without bound. The session sets the policy for the thread that runs the graph
// (ShapePlanScope); a kernel used outside a session gets the default policy.
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace kpt::cpu {

struct ShapePlanPolicy {
  size_t capacity = 8;  // unpinned shapes kept per kernel
  bool pin = false;     // plans made now belong to a shape bucket
};

// The policy of the calling thread.
const ShapePlanPolicy& shape_plan_policy();

// Sets the calling thread's policy for its lifetime, restoring the previous one after.
class ShapePlanScope {
 public:
  explicit ShapePlanScope(ShapePlanPolicy policy);
  ~ShapePlanScope();
  ShapePlanScope(const ShapePlanScope&) = delete;
  ShapePlanScope& operator=(const ShapePlanScope&) = delete;

 private:
  ShapePlanPolicy previous_;
};

// Plans by key under the calling thread's policy. Thread-safe; plans are shared so one that is
// evicted while a run still uses it stays alive until that run ends.
template <typename Key, typename Plan>
class ShapePlanCache {
 public:
  // The plan for `key`, made by make() (which may return nullptr: "no kernel for this shape",
  // cached like any plan) when absent.
  template <typename Make>
  std::shared_ptr<const Plan> get(const Key& key, Make&& make) const {
    const ShapePlanPolicy& policy = shape_plan_policy();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto p = pinned_.find(key); p != pinned_.end()) return p->second;
    if (auto it = index_.find(key); it != index_.end()) {
      auto plan = it->second->second;
      if (policy.pin) {
        recent_.erase(it->second);
        index_.erase(it);
        pinned_.emplace(key, plan);
      } else {
        recent_.splice(recent_.begin(), recent_, it->second);
      }
      return plan;
    }
    std::shared_ptr<const Plan> plan = make();
    if (policy.pin) {
      pinned_.emplace(key, plan);
      return plan;
    }
    recent_.emplace_front(key, plan);
    index_[key] = recent_.begin();
    while (recent_.size() > policy.capacity) {
      index_.erase(recent_.back().first);
      recent_.pop_back();
    }
    return plan;
  }

  size_t pinned_size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pinned_.size();
  }
  size_t recent_size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return recent_.size();
  }

 private:
  using Entry = std::pair<Key, std::shared_ptr<const Plan>>;
  mutable std::mutex mu_;
  mutable std::map<Key, std::shared_ptr<const Plan>> pinned_;
  mutable std::list<Entry> recent_;  // most recent first
  mutable std::map<Key, typename std::list<Entry>::iterator> index_;
};

}  // namespace kpt::cpu
