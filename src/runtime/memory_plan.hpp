#pragma once
// Liveness-based memory planning: the outputs that prepared kernels allocate (through
// KernelContext::allocate_output) are placed in one arena per run, at offsets chosen so that
// tensors whose lifetimes overlap never share bytes, and elementwise nodes may write over an
// input that dies at that node. Plans are made per input-shape signature: the first run with a
// new signature records sizes, lifetimes and aliases (views such as Reshape's), the next ones
// use the plan. Plans of shape buckets are pinned; the others are kept for the most recent
// `max_plans` signatures.
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/value.hpp"

namespace kpt::runtime {

struct MemoryReport {
  size_t arena_bytes = 0;           // the largest planned arena
  size_t planned_tensor_bytes = 0;  // sum of the tensors placed in it (no reuse)
  int planned_tensors = 0;
  int in_place = 0;  // outputs written over a dying input
  int plans = 0;     // signatures planned so far
  int pinned = 0;    // plans kept for good (shape buckets)
  int kept = 0;      // plans held now, pinned included
};

// One planned tensor: node output (node, output) at byte `offset` of the arena.
struct PlannedTensor {
  size_t bytes = 0;
  size_t offset = 0;
};

struct MemoryPlan {
  std::map<std::pair<size_t, size_t>, PlannedTensor> tensors;  // (node, output) -> place
  // Node outputs that are views of planned memory by design (a Reshape of a planned tensor).
  std::set<std::pair<size_t, size_t>> expected_views;
  size_t arena_bytes = 0;
  size_t tensor_bytes = 0;
  int in_place = 0;
};

class ArenaPool;
class RunMemory;

// Per session; thread-safe. Each run asks begin() for the memory of that run.
class MemoryPlanner {
 public:
  MemoryPlanner(const ir::Graph& g, size_t max_plans);
  ~MemoryPlanner();
  // The memory of one run; `pinned`: its signature's plan is never evicted.
  std::unique_ptr<RunMemory> begin(const std::vector<Value>& inputs, bool pinned = false);
  MemoryReport report() const;

  // The key plans are kept under: the dtypes and dims of a run's inputs.
  static std::string signature(const std::vector<Value>& inputs);
  // The plan made for a signature, if one is held.
  std::shared_ptr<const MemoryPlan> find(const std::string& signature) const;
  // Takes a plan made elsewhere (an engine file) for a signature, pinned. Fails naming the
  // first entry whose node, output or place does not fit this graph and the plan's arena.
  void import(const std::string& signature, MemoryPlan plan);

 private:
  friend class RunMemory;
  void store(const std::string& signature, MemoryPlan plan, bool pinned);

  size_t last_use(size_t node, size_t output) const;

  const ir::Graph& graph_;
  // Last node reading each value; nodes.size() for graph outputs (they outlive the run).
  std::map<std::string, size_t> last_use_;
  mutable std::mutex mu_;
  size_t max_plans_;
  std::map<std::string, std::shared_ptr<const MemoryPlan>> pinned_;
  std::list<std::pair<std::string, std::shared_ptr<const MemoryPlan>>> plans_;  // LRU, newest first
  std::shared_ptr<ArenaPool> pool_;
  MemoryReport report_;
};

// The memory of one run: serves allocate_output and watches node outputs for views of the
// arena that the plan does not expect (those are copied out, so reuse stays safe).
class RunMemory {
 public:
  RunMemory(MemoryPlanner& planner, std::string signature, std::shared_ptr<const MemoryPlan> plan,
            bool pinned);
  ~RunMemory();
  Tensor allocate(size_t node, size_t output, DType dtype, const Dims& dims);
  void after_node(size_t node, const std::vector<const Value*>& inputs,
                  std::vector<Value>& outputs);
  // Copies graph outputs out of the arena; on a recording run, makes and stores the plan.
  void finish(std::vector<Value>& results);

 private:
  struct Recorded {
    size_t node, output, bytes;
    const char* begin;
    size_t end_node;  // last node reading it or a view of it
    bool escapes = false;
    int in_place_of = -1;  // recorded tensor whose bytes it reuses
    bool lent = false;     // already reused in place by a later output
  };
  int find_recorded(const void* p) const;
  void make_plan();

  MemoryPlanner& planner_;
  std::string signature_;
  bool pinned_;
  std::shared_ptr<const MemoryPlan> plan_;  // null: recording
  std::shared_ptr<void> arena_;
  char* base_ = nullptr;
  std::vector<Recorded> recorded_;
  std::map<const char*, int> recorded_by_ptr_;
  std::set<std::pair<size_t, size_t>> views_;
  std::set<std::pair<size_t, size_t>> handed_out_;  // planned places given in this run
};

// Ops whose fast kernels may write output 0 over an input of the same size (streaming loops).
bool allows_in_place(const ir::Node& node);

}  // namespace kpt::runtime
