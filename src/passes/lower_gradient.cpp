#include "passes/lower_gradient.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "analysis/shape_inference.hpp"
#include "core/cast.hpp"
#include "kpt/error.hpp"

namespace kpt::passes {
namespace {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";

struct Builder {
  ir::Graph& g;
  int opset;
  std::string prefix;
  std::vector<ir::Node> nodes;
  int counter = 0;

  std::string add(const std::string& op, std::vector<std::string> inputs,
                  std::map<std::string, ir::Attribute> attrs = {}) {
    ir::Node n;
    n.op_type = op;
    n.opset = opset;
    n.name = prefix + std::to_string(counter++);
    n.inputs = std::move(inputs);
    n.outputs = {n.name};
    n.attrs = std::move(attrs);
    nodes.push_back(std::move(n));
    return nodes.back().outputs[0];
  }

  // A tensor shaped like `like` filled with `value`, of like's element type.
  std::string filled_like(const std::string& like, float value) {
    const ir::Type* t = g.type_of(like);
    const DType dtype = t && t->elem != DType::Undefined ? t->elem : DType::F32;
    Tensor v(DType::F32, {1});
    v.data<float>()[0] = value;
    ir::Attribute a;
    a.name = "value";
    a.kind = ir::Attribute::Kind::Tensor;
    a.t = cast_tensor(v, dtype);
    return add("ConstantOfShape", {add("Shape", {like})}, {{"value", a}});
  }
};

bool shapes_equal(const ir::Graph& g, const std::string& a, const std::string& b) {
  const ir::Type* ta = g.type_of(a);
  const ir::Type* tb = g.type_of(b);
  return ta && tb && ta->shape && tb->shape && *ta->shape == *tb->shape;
}

void lower_one(ir::Graph& g, size_t at) {
  const ir::Node grad = g.nodes[at];
  const std::vector<std::string> xs = grad.attr_strings("xs");
  const std::string y = grad.attr_string("y", "");
  check(!xs.empty() && !y.empty(), grad.label() + ": needs the attributes xs and y");
  check(grad.outputs.size() == xs.size(), grad.label() + ": has " +
                                              std::to_string(grad.outputs.size()) +
                                              " outputs for " + std::to_string(xs.size()) + " xs");
  std::map<std::string, size_t> producer;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (const auto& o : g.nodes[k].outputs) producer[o] = k;
  }
  // Values that depend on some x, in forward order.
  std::set<std::string> depends(xs.begin(), xs.end());
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) {
      if (depends.count(i)) {
        for (const auto& o : n.outputs) depends.insert(o);
        break;
      }
    }
  }
  Builder b{g, grad.opset, grad.name + "/grad/", {}, 0};
  if (auto it = g.opsets.find(""); it != g.opsets.end()) b.opset = it->second;
  std::map<std::string, std::string> grads;
  auto accumulate = [&](const std::string& value, const std::string& contribution) {
    if (!depends.count(value)) return;
    auto it = grads.find(value);
    grads[value] = it == grads.end() ? contribution : b.add("Add", {it->second, contribution});
  };
  grads[y] = b.filled_like(y, 1.0f);
  // Reverse topological order over the nodes y depends on.
  std::vector<size_t> order;
  std::set<size_t> seen;
  std::vector<std::string> stack = {y};
  while (!stack.empty()) {
    std::string v = stack.back();
    stack.pop_back();
    auto p = producer.find(v);
    if (p == producer.end() || !seen.insert(p->second).second) continue;
    order.push_back(p->second);
    for (const auto& i : g.nodes[p->second].inputs) stack.push_back(i);
  }
  std::sort(order.rbegin(), order.rend());
  for (size_t k : order) {
    const ir::Node& n = g.nodes[k];
    auto gy = grads.find(n.outputs[0]);
    if (gy == grads.end()) continue;
    const std::string gout = gy->second;
    const bool binary = n.inputs.size() == 2;
    if (binary && !shapes_equal(g, n.inputs[0], n.inputs[1])) {
      unsupported(grad.label() + ": differentiating " + n.label() +
                  " needs operands of the same declared shape (broadcasting is not supported)");
    }
    const std::string& a = n.inputs[0];
    if (n.op_type == "Add" && binary) {
      accumulate(a, gout);
      accumulate(n.inputs[1], gout);
    } else if (n.op_type == "Sub" && binary) {
      accumulate(a, gout);
      accumulate(n.inputs[1], b.add("Neg", {gout}));
    } else if (n.op_type == "Mul" && binary) {
      accumulate(a, b.add("Mul", {gout, n.inputs[1]}));
      accumulate(n.inputs[1], b.add("Mul", {gout, a}));
    } else if (n.op_type == "Div" && binary) {
      const std::string& d = n.inputs[1];
      accumulate(a, b.add("Div", {gout, d}));
      accumulate(d, b.add("Neg", {b.add("Div", {b.add("Mul", {gout, a}), b.add("Mul", {d, d})})}));
    } else if (n.op_type == "Neg") {
      accumulate(a, b.add("Neg", {gout}));
    } else if (n.op_type == "Identity") {
      accumulate(a, gout);
    } else {
      unsupported(grad.label() + ": differentiating through " + n.op_type +
                  " is not supported (supported: Add, Sub, Mul, Div, Neg, Identity)");
    }
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    if (grad.outputs[i].empty()) continue;
    auto it = grads.find(xs[i]);
    std::string value = it != grads.end() ? it->second : b.filled_like(xs[i], 0.0f);
    b.nodes.push_back(ir::Node{grad.name + "/out" + std::to_string(i),
                               "Identity",
                               "",
                               b.opset,
                               {value},
                               {grad.outputs[i]},
                               {}});
  }
  g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(at));
  g.nodes.insert(g.nodes.end(), b.nodes.begin(), b.nodes.end());
}

}  // namespace

int lower_gradients(ir::Graph& g) {
  bool any = false;
  for (const auto& n : g.nodes) any |= n.domain == kTrainingDomain && n.op_type == "Gradient";
  if (!any) return 0;
  analysis::infer_shapes(g);  // differentiation needs to know where operands broadcast
  int lowered = 0;
  for (size_t k = 0; k < g.nodes.size();) {
    if (g.nodes[k].domain == kTrainingDomain && g.nodes[k].op_type == "Gradient") {
      lower_one(g, k);
      ++lowered;
    } else {
      ++k;
    }
  }
  if (lowered) ir::sort_and_verify(g);
  return lowered;
}

}  // namespace kpt::passes
