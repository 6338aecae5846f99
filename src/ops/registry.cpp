#include "ops/registry.hpp"

namespace kpt::ops {

const Value& KernelContext::value(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but missing");
  return *inputs_[i];
}

const Tensor& KernelContext::input(size_t i) const {
  const Value& v = value(i);
  if (!v.is_tensor()) fail("input " + std::to_string(i) + " must be a tensor");
  return v.tensor;
}

bool KernelContext::wants_output(size_t i) const {
  return i < outputs_.size() && i < node_.outputs.size() && !node_.outputs[i].empty();
}

Tensor KernelContext::allocate_output(size_t i, DType dtype, Dims dims) const {
  if (allocator_) return (*allocator_)(node_, i, dtype, dims);
  return Tensor::uninitialized(dtype, std::move(dims));
}

void KernelContext::set_output(size_t i, Tensor t) {
  set_output_value(i, Value::of(std::move(t)));
}

void KernelContext::set_output_value(size_t i, Value v) {
  if (i < outputs_.size()) outputs_[i] = std::move(v);
}

std::vector<Value> KernelContext::run_subgraph(const ir::Graph& body,
                                               const std::vector<Value>& inputs) const {
  if (!run_subgraph_) fail("no subgraph runner is available");
  return (*run_subgraph_)(body, inputs);
}

void KernelContext::fail(const std::string& message) const {
  ::kpt::fail(node_.label() + ": " + message);
}

void KernelContext::unsupported(const std::string& message) const {
  ::kpt::unsupported(node_.label() + ": " + message);
}

Registry& Registry::instance() {
  static Registry r;
  return r;
}

void Registry::add(OpEntry e) {
  entries_.push_back(std::move(e));
}

const OpEntry* Registry::find(const std::string& domain, const std::string& op_type,
                              int opset) const {
  const OpEntry* best = nullptr;
  for (const auto& e : entries_) {
    if (e.domain != domain || e.op_type != op_type || e.since_version > opset) continue;
    if (!best || e.since_version > best->since_version) best = &e;
  }
  return best;
}

bool Registry::knows(const std::string& domain, const std::string& op_type) const {
  for (const auto& e : entries_) {
    if (e.domain == domain && e.op_type == op_type) return true;
  }
  return false;
}

std::vector<OpEntry> Registry::entries() const {
  return entries_;
}

void Registry::add_infer(const std::string& domain, const std::string& op_type, InferFn fn) {
  infers_[{domain, op_type}] = fn;
}

InferFn Registry::find_infer(const std::string& domain, const std::string& op_type,
                             int opset) const {
  auto it = infers_.find({domain, op_type});
  if (it != infers_.end()) return it->second;
  const OpEntry* e = find(domain, op_type, opset);
  return e ? e->infer : nullptr;
}

std::vector<std::pair<std::string, std::string>> Registry::ops_with_inference() const {
  std::map<std::pair<std::string, std::string>, bool> ops;
  for (const auto& [key, fn] : infers_) ops[key] = true;
  for (const auto& e : entries_) {
    if (e.infer) ops[{e.domain, e.op_type}] = true;
  }
  std::vector<std::pair<std::string, std::string>> r;
  for (const auto& [key, present] : ops) r.push_back(key);
  return r;
}

}  // namespace kpt::ops
