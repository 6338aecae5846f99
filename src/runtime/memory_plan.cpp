#include "runtime/memory_plan.hpp"

#include <algorithm>
#include <set>

#include "kpt/error.hpp"

namespace kpt::runtime {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMaxPooledArenas = 4;

size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

template <typename F>
void for_each_tensor(Value& v, F&& f) {
  if (v.is_tensor()) f(v.tensor);
  if (v.is_sequence()) {
    for (auto& t : v.sequence) f(t);
  }
}

}  // namespace

std::string MemoryPlanner::signature(const std::vector<Value>& inputs) {
  std::string s;
  for (const auto& v : inputs) {
    if (v.is_tensor()) {
      s += std::to_string(static_cast<int>(v.tensor.dtype())) + dims_to_string(v.tensor.dims());
    } else if (v.is_sequence()) {
      s += "seq" + std::to_string(v.sequence.size());
      for (const auto& t : v.sequence) s += dims_to_string(t.dims());
    } else {
      s += "none";
    }
    s += ';';
  }
  return s;
}

bool allows_in_place(const ir::Node& node) {
  static const std::set<std::string> ops = {"Add",
                                            "Sub",
                                            "Mul",
                                            "Div",
                                            "Relu",
                                            "Sigmoid",
                                            "Tanh",
                                            "Gelu",
                                            "Erf",
                                            "Softmax",
                                            "LayerNormalization"};
  return node.domain.empty() && ops.count(node.op_type) != 0;
}

// Arena blocks, reused across runs. A block is free when nothing but the pool holds it: a
// tensor that escaped a run (a view the plan did not foresee) keeps its block out of reuse.
class ArenaPool {
 public:
  std::shared_ptr<Storage> acquire(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : blocks_) {
      if (b.use_count() == 1 && b->bytes >= bytes) return b;
    }
    auto block = Storage::allocate(std::max<size_t>(bytes, kAlign), false);
    if (blocks_.size() < kMaxPooledArenas) {
      blocks_.push_back(block);
    } else {
      for (auto& b : blocks_) {
        if (b.use_count() == 1) {
          b = block;  // replaces a free, smaller block
          break;
        }
      }
    }
    return block;
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Storage>> blocks_;
};

MemoryPlanner::MemoryPlanner(const ir::Graph& g, size_t max_plans)
    : graph_(g), max_plans_(max_plans), pool_(std::make_shared<ArenaPool>()) {
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (const auto& name : g.nodes[k].inputs) last_use_[name] = k;
    for (const auto& [n, a] : g.nodes[k].attrs) {
      if (a.g) {
        for (const auto& u : ir::outer_uses(*a.g)) last_use_[u] = k;
      }
      for (const auto& sg : a.graphs) {
        for (const auto& u : ir::outer_uses(*sg)) last_use_[u] = k;
      }
    }
  }
  for (const auto& o : g.outputs) last_use_[o.name] = g.nodes.size();
}

MemoryPlanner::~MemoryPlanner() = default;

size_t MemoryPlanner::last_use(size_t node, size_t output) const {
  const auto& outs = graph_.nodes[node].outputs;
  if (output >= outs.size() || outs[output].empty()) return node;
  auto it = last_use_.find(outs[output]);
  return it == last_use_.end() ? node : it->second;
}

std::unique_ptr<RunMemory> MemoryPlanner::begin(const std::vector<Value>& inputs, bool pinned) {
  std::string sig = signature(inputs);
  std::shared_ptr<const MemoryPlan> plan;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto p = pinned_.find(sig); p != pinned_.end()) {
      plan = p->second;
    } else {
      for (auto it = plans_.begin(); it != plans_.end(); ++it) {
        if (it->first != sig) continue;
        plan = it->second;
        if (pinned) {
          pinned_.emplace(sig, plan);
          plans_.erase(it);
          report_.pinned++;
        } else {
          plans_.splice(plans_.begin(), plans_, it);
        }
        break;
      }
    }
  }
  return std::make_unique<RunMemory>(*this, std::move(sig), std::move(plan), pinned);
}

std::shared_ptr<const MemoryPlan> MemoryPlanner::find(const std::string& sig) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto p = pinned_.find(sig); p != pinned_.end()) return p->second;
  for (const auto& [s, p] : plans_) {
    if (s == sig) return p;
  }
  return nullptr;
}

void MemoryPlanner::import(const std::string& sig, MemoryPlan plan) {
  const auto& nodes = graph_.nodes;
  const auto where = [&](std::pair<size_t, size_t> key) {
    return "node " + std::to_string(key.first) + " output " + std::to_string(key.second);
  };
  const auto check_output = [&](std::pair<size_t, size_t> key, const char* what) {
    check(key.first < nodes.size() && key.second < nodes[key.first].outputs.size(),
          std::string("memory plan: ") + what + " at " + where(key) + " is not in this graph (" +
              std::to_string(nodes.size()) + " nodes); was the plan made for another model?");
  };
  plan.tensor_bytes = 0;
  for (const auto& [key, t] : plan.tensors) {
    check_output(key, "tensor");
    check(t.bytes > 0 && t.offset % kAlign == 0 && t.offset <= plan.arena_bytes &&
              t.bytes <= plan.arena_bytes - t.offset,
          "memory plan: tensor at " + where(key) + " (" + std::to_string(t.bytes) +
              " bytes at offset " + std::to_string(t.offset) + ") does not fit the arena of " +
              std::to_string(plan.arena_bytes) + " bytes at a 64-byte-aligned offset");
    plan.tensor_bytes += t.bytes;
  }
  for (const auto& key : plan.expected_views) check_output(key, "view");
  store(sig, std::move(plan), true);
}

void MemoryPlanner::store(const std::string& signature, MemoryPlan plan, bool pinned) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pinned_.count(signature)) return;  // a concurrent run planned it first
  for (const auto& [s, p] : plans_) {
    if (s == signature) return;
  }
  report_.arena_bytes = std::max(report_.arena_bytes, plan.arena_bytes);
  report_.planned_tensor_bytes = std::max(report_.planned_tensor_bytes, plan.tensor_bytes);
  report_.planned_tensors =
      std::max(report_.planned_tensors, static_cast<int>(plan.tensors.size()));
  report_.in_place = std::max(report_.in_place, plan.in_place);
  report_.plans++;
  auto shared = std::make_shared<const MemoryPlan>(std::move(plan));
  if (pinned) {
    pinned_.emplace(signature, std::move(shared));
    report_.pinned++;
    return;
  }
  plans_.emplace_front(signature, std::move(shared));
  while (plans_.size() > max_plans_) plans_.pop_back();
}

MemoryReport MemoryPlanner::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  MemoryReport r = report_;
  r.kept = static_cast<int>(pinned_.size() + plans_.size());
  return r;
}

RunMemory::RunMemory(MemoryPlanner& planner, std::string signature,
                     std::shared_ptr<const MemoryPlan> plan, bool pinned)
    : planner_(planner), signature_(std::move(signature)), pinned_(pinned), plan_(std::move(plan)) {
  if (plan_ && plan_->arena_bytes > 0) {
    auto block = planner_.pool_->acquire(plan_->arena_bytes);
    base_ = static_cast<char*>(block->data);
    arena_ = block;
  }
}

RunMemory::~RunMemory() = default;

Tensor RunMemory::allocate(size_t node, size_t output, DType dtype, const Dims& dims) {
  if (dtype == DType::String) return Tensor(dtype, dims);
  if (plan_) {
    auto it = plan_->tensors.find({node, output});
    if (it != plan_->tensors.end() && base_) {
      const size_t bytes = static_cast<size_t>(element_count(dims)) * dtype_size(dtype);
      // A second request for the same output (a kernel's scratch) must not share the place.
      if (bytes == it->second.bytes && handed_out_.insert({node, output}).second) {
        return Tensor::view(dtype, dims, base_ + it->second.offset, arena_);
      }
    }
    return Tensor::uninitialized(dtype, dims);
  }
  Tensor t = Tensor::uninitialized(dtype, dims);
  if (t.nbytes() > 0) {
    recorded_by_ptr_[static_cast<const char*>(t.raw())] = static_cast<int>(recorded_.size());
    recorded_.push_back(Recorded{node, output, t.nbytes(), static_cast<const char*>(t.raw()),
                                 planner_.last_use(node, output)});
  }
  return t;
}

int RunMemory::find_recorded(const void* p) const {
  const char* c = static_cast<const char*>(p);
  auto it = recorded_by_ptr_.upper_bound(c);
  if (it == recorded_by_ptr_.begin()) return -1;
  --it;
  const Recorded& r = recorded_[static_cast<size_t>(it->second)];
  return c < r.begin + r.bytes ? it->second : -1;
}

void RunMemory::after_node(size_t node, const std::vector<const Value*>& inputs,
                           std::vector<Value>& outputs) {
  const size_t end_of_graph = planner_.graph_.nodes.size();
  if (plan_) {
    if (!base_) return;
    const char* lo = base_;
    const char* hi = base_ + plan_->arena_bytes;
    for (size_t i = 0; i < outputs.size(); ++i) {
      for_each_tensor(outputs[i], [&](Tensor& t) {
        const char* p = static_cast<const char*>(t.raw());
        if (!p || p < lo || p >= hi) return;
        auto it = plan_->tensors.find({node, i});
        if (it != plan_->tensors.end() && p == lo + it->second.offset) return;
        if (plan_->expected_views.count({node, i})) return;
        t = t.clone();  // a view the plan did not foresee: its bytes may be reused
      });
    }
    return;
  }
  // Recording: outputs that point into a recorded tensor are views of it (Reshape, Identity,
  // Squeeze...): the tensor lives as long as its longest-lived view.
  for (size_t i = 0; i < outputs.size(); ++i) {
    for_each_tensor(outputs[i], [&](Tensor& t) {
      const int r = find_recorded(t.raw());
      if (r < 0) return;
      Recorded& rec = recorded_[static_cast<size_t>(r)];
      if (rec.node == node && rec.output == i) return;
      const size_t end = planner_.last_use(node, i);
      rec.end_node = std::max(rec.end_node, end);
      if (end >= end_of_graph) rec.escapes = true;
      views_.emplace(node, i);
    });
  }
  const ir::Node& n = planner_.graph_.nodes[node];
  if (!allows_in_place(n)) return;
  auto out = recorded_by_ptr_.end();
  if (!outputs.empty() && outputs[0].is_tensor() && outputs[0].tensor.raw()) {
    out = recorded_by_ptr_.find(static_cast<const char*>(outputs[0].tensor.raw()));
  }
  if (out == recorded_by_ptr_.end()) return;
  Recorded& produced = recorded_[static_cast<size_t>(out->second)];
  if (produced.node != node || produced.output != 0) return;
  for (const Value* in : inputs) {
    if (!in || !in->is_tensor() || !in->tensor.raw()) continue;
    auto src = recorded_by_ptr_.find(static_cast<const char*>(in->tensor.raw()));
    if (src == recorded_by_ptr_.end()) continue;
    Recorded& donor = recorded_[static_cast<size_t>(src->second)];
    if (donor.bytes != produced.bytes || donor.end_node != node || donor.escapes || donor.lent) {
      continue;
    }
    donor.lent = true;
    produced.in_place_of = src->second;
    break;
  }
}

void RunMemory::finish(std::vector<Value>& results) {
  if (plan_) {
    if (!base_) return;
    const char* lo = base_;
    const char* hi = base_ + plan_->arena_bytes;
    for (auto& v : results) {
      for_each_tensor(v, [&](Tensor& t) {
        const char* p = static_cast<const char*>(t.raw());
        if (p && p >= lo && p < hi) t = t.clone();
      });
    }
    return;
  }
  for (auto& v : results) {
    for_each_tensor(v, [&](Tensor& t) {
      const int r = find_recorded(t.raw());
      if (r >= 0) recorded_[static_cast<size_t>(r)].escapes = true;
    });
  }
  make_plan();
}

void RunMemory::make_plan() {
  // Slots: a recorded tensor and the ones that reuse its bytes in place share a slot whose
  // lifetime spans them all.
  const size_t n = recorded_.size();
  std::vector<int> slot_of(n, -1);
  struct Slot {
    size_t bytes = 0, start = 0, end = 0, offset = 0;
  };
  std::vector<Slot> slots;
  MemoryPlan plan;
  for (size_t r = 0; r < n; ++r) {
    const Recorded& rec = recorded_[r];
    if (rec.escapes) continue;
    const int donor = rec.in_place_of;
    if (donor >= 0 && slot_of[static_cast<size_t>(donor)] >= 0 &&
        !recorded_[static_cast<size_t>(donor)].escapes) {
      const int s = slot_of[static_cast<size_t>(donor)];
      slot_of[r] = s;
      slots[static_cast<size_t>(s)].end = std::max(slots[static_cast<size_t>(s)].end, rec.end_node);
      plan.in_place++;
      continue;
    }
    slot_of[r] = static_cast<int>(slots.size());
    slots.push_back(Slot{aligned(rec.bytes), rec.node, rec.end_node, 0});
  }
  // Greedy placement, largest first, at the lowest offset free during the slot's lifetime.
  std::vector<size_t> order(slots.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return slots[a].bytes > slots[b].bytes; });
  std::vector<size_t> placed;
  size_t arena = 0;
  for (size_t s : order) {
    std::vector<std::pair<size_t, size_t>> busy;  // [offset, offset+bytes) of overlapping slots
    for (size_t p : placed) {
      if (slots[p].start <= slots[s].end && slots[s].start <= slots[p].end) {
        busy.emplace_back(slots[p].offset, slots[p].offset + slots[p].bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + slots[s].bytes <= lo) break;
      offset = std::max(offset, hi);
    }
    slots[s].offset = offset;
    arena = std::max(arena, offset + slots[s].bytes);
    placed.push_back(s);
  }
  for (size_t r = 0; r < n; ++r) {
    if (slot_of[r] < 0) continue;
    const Recorded& rec = recorded_[r];
    plan.tensors[{rec.node, rec.output}] =
        PlannedTensor{rec.bytes, slots[static_cast<size_t>(slot_of[r])].offset};
    plan.tensor_bytes += rec.bytes;
  }
  plan.expected_views = views_;
  plan.arena_bytes = arena;
  planner_.store(signature_, std::move(plan), pinned_);
}

}  // namespace kpt::runtime
