#include "analysis/shape_inference.hpp"

#include <set>

#include "analysis/symbolic_dim.hpp"
#include "ops/registry.hpp"

namespace kpt::analysis {

namespace {

// Integer tensors up to this many elements are tracked as shape values.
constexpr int64_t kMaxValueElements = 1024;

// Ops whose output is not a function of their inputs: never folded.
const std::set<std::string> kNondeterministic = {"RandomNormal",     "RandomUniform",
                                                 "RandomNormalLike", "RandomUniformLike",
                                                 "Bernoulli",        "Multinomial"};

std::optional<ir::Shape> value_of_tensor(const Tensor& t) {
  if (!is_integer(t.dtype()) || t.rank() > 1 || t.numel() > kMaxValueElements) return std::nullopt;
  ir::Shape v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(int_dim(t.get_i64(i)));
  return v;
}

ir::Type type_of_tensor(const Tensor& t) {
  return ir::Type::tensor(t.dtype(), shape_of_dims(t.dims()));
}

bool has_subgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

// A known dim beats a symbol, a named symbol beats an unnamed unknown; inferred beats
// declared when equally informative (declared types may predate --shape bindings).
ir::Type merge(const ir::Type* declared, const ir::Type& inferred) {
  if (inferred.kind != ir::Type::Kind::Tensor) return declared ? *declared : inferred;
  if (!declared || declared->kind != ir::Type::Kind::Tensor) return inferred;
  ir::Type r = inferred;
  if (r.elem == DType::Undefined) r.elem = declared->elem;
  if (!r.shape) {
    r.shape = declared->shape;
  } else if (declared->shape && declared->shape->size() == r.shape->size()) {
    for (size_t k = 0; k < r.shape->size(); ++k) {
      ir::Dim& mine = (*r.shape)[k];
      const ir::Dim& theirs = (*declared->shape)[k];
      if (mine.known()) continue;
      if (theirs.known() || mine.symbol.empty()) mine = theirs;
    }
  }
  return r;
}

struct Scope {
  const Scope* parent = nullptr;
  ir::Graph* graph = nullptr;
  std::map<std::string, ir::Type> types;  // initializers and inferred outputs
  std::map<std::string, Tensor> constants;
  std::map<std::string, ir::Shape> values;

  bool defines(const std::string& n) const {
    return types.count(n) || graph->type_of(n) != nullptr || graph->initializers.count(n);
  }
  const ir::Type* type(const std::string& n) const {
    auto it = types.find(n);
    if (it != types.end()) return &it->second;
    if (const ir::Type* t = graph->type_of(n)) return t;
    return parent ? parent->type(n) : nullptr;
  }
  const Tensor* constant(const std::string& n) const {
    auto it = constants.find(n);
    if (it != constants.end()) return &it->second;
    if (defines(n)) return nullptr;
    return parent ? parent->constant(n) : nullptr;
  }
  const ir::Shape* value(const std::string& n) const {
    auto it = values.find(n);
    if (it != values.end()) return &it->second;
    if (defines(n)) return nullptr;
    return parent ? parent->value(n) : nullptr;
  }
};

class Inferer {
 public:
  explicit Inferer(const InferenceOptions& o) : options_(o) {}

  void run(Scope& scope) {
    ir::Graph& g = *scope.graph;
    std::set<std::string> overridable;
    for (const auto& i : g.inputs) overridable.insert(i.name);
    for (const auto& [name, t] : g.initializers) {
      scope.types[name] = type_of_tensor(t);
      // An initializer that is also a graph input is only a default: not a constant.
      if (overridable.count(name)) continue;
      scope.constants[name] = t;
      if (auto v = value_of_tensor(t)) scope.values[name] = *v;
    }
    for (auto& node : g.nodes) visit(scope, node);
  }

  InferenceSummary summary;

 private:
  void visit(Scope& scope, ir::Node& node) {
    ++summary.nodes;
    // Subgraphs first, so that If/Loop inference can read their bodies' output types.
    for (auto& [name, a] : node.attrs) {
      std::vector<std::shared_ptr<ir::Graph>> subs;
      if (a.g) subs.push_back(a.g);
      subs.insert(subs.end(), a.graphs.begin(), a.graphs.end());
      for (auto& sub : subs) {
        Scope child;
        child.parent = &scope;
        child.graph = sub.get();
        run(child);
      }
    }

    ops::InferContext ctx{node, {}, {}, std::vector<ir::Type>(node.outputs.size()), {}, {}};
    ctx.output_values.resize(node.outputs.size());
    bool all_constant = true;
    for (const auto& in : node.inputs) {
      if (in.empty()) {
        ctx.inputs.push_back(nullptr);
        ctx.constants.push_back(nullptr);
        ctx.input_values.push_back(nullptr);
        continue;
      }
      ctx.inputs.push_back(scope.type(in));
      const Tensor* c = scope.constant(in);
      ctx.constants.push_back(c);
      ctx.input_values.push_back(scope.value(in));
      if (!c || c->numel() >= options_.max_constant_elements) all_constant = false;
    }

    const auto& registry = ops::Registry::instance();
    const ops::InferFn infer = registry.find_infer(node.domain, node.op_type, node.opset);
    const std::string op = (node.domain.empty() ? "" : node.domain + ".") + node.op_type;
    bool inferred = false;
    if (infer) {
      try {
        infer(ctx);
        inferred = true;
      } catch (const std::exception& e) {
        ++summary.ops_failed[op];
        summary.first_failure.emplace(op, node.label() + ": " + e.what());
        ctx.outputs.assign(node.outputs.size(), ir::Type{});
        ctx.output_values.assign(node.outputs.size(), std::nullopt);
      }
    } else {
      ++summary.ops_without_inference[op];
    }

    std::vector<Tensor> folded;
    if (all_constant && !has_subgraph(node) && !kNondeterministic.count(node.op_type) &&
        (!inferred || outputs_small(ctx))) {
      folded = fold(node, ctx);
    }

    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const std::string& name = node.outputs[k];
      if (name.empty()) continue;
      ir::Type t = ctx.outputs[k];
      if (k < folded.size() && folded[k].defined()) {
        t = type_of_tensor(folded[k]);
        scope.constants[name] = folded[k];
        if (auto v = value_of_tensor(folded[k])) scope.values[name] = *v;
      } else if (k < ctx.output_values.size() && ctx.output_values[k]) {
        scope.values[name] = *ctx.output_values[k];
        if (Tensor c = materialize(t, *ctx.output_values[k]); c.defined()) {
          scope.constants[name] = c;
        }
      }
      ir::Type merged = merge(scope.graph->type_of(name), t);
      if (merged.kind != ir::Type::Kind::Unknown) {
        scope.graph->value_types[name] = merged;
        scope.types[name] = merged;
      }
      if (merged.kind == ir::Type::Kind::Tensor && merged.elem != DType::Undefined) {
        ++summary.outputs_typed;
        if (merged.shape && fully_known(*merged.shape)) ++summary.outputs_fully_static;
      } else if (merged.kind == ir::Type::Kind::Sequence ||
                 merged.kind == ir::Type::Kind::Optional) {
        ++summary.outputs_typed;
      }
    }
  }

  bool outputs_small(const ops::InferContext& ctx) const {
    for (size_t k = 0; k < ctx.outputs.size(); ++k) {
      if (ctx.node.outputs[k].empty()) continue;
      const ir::Type& t = ctx.outputs[k];
      if (t.kind != ir::Type::Kind::Tensor || !t.shape) return false;
      auto dims = known_values(*t.shape);
      if (!dims) return false;
      int64_t n = 1;
      for (int64_t d : *dims) {
        if (d < 0) return false;
        n *= d;
        if (n >= options_.max_constant_elements) return false;
      }
    }
    return true;
  }

  // Runs the node's reference kernel on its constant inputs; empty when it cannot.
  std::vector<Tensor> fold(const ir::Node& node, const ops::InferContext& ctx) {
    const ops::OpEntry* entry =
        ops::Registry::instance().find(node.domain, node.op_type, node.opset);
    if (!entry || !entry->kernel) return {};
    std::vector<Value> in_values;
    in_values.reserve(node.inputs.size());
    for (const Tensor* c : ctx.constants) in_values.push_back(c ? Value::of(*c) : Value{});
    std::vector<const Value*> in;
    for (size_t i = 0; i < in_values.size(); ++i) {
      in.push_back(ctx.constants[i] ? &in_values[i] : nullptr);
    }
    std::vector<Value> out(node.outputs.size());
    try {
      ops::KernelContext kc(node, std::move(in), out, nullptr);
      entry->kernel(kc);
    } catch (const std::exception&) {
      return {};  // an op a kernel cannot fold still has its inferred type
    }
    std::vector<Tensor> result(node.outputs.size());
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].is_tensor() || out[k].tensor.numel() >= options_.max_constant_elements) continue;
      result[k] = out[k].tensor;
    }
    ++summary.nodes_folded;
    return result;
  }

  // A shape value whose elements are all known becomes a constant tensor, so that kernels
  // downstream can fold with it.
  static Tensor materialize(const ir::Type& t, const ir::Shape& value) {
    if (t.kind != ir::Type::Kind::Tensor || !t.shape || t.shape->size() > 1) return {};
    if (t.elem != DType::I64 && t.elem != DType::I32) return {};
    auto ints = known_values(value);
    if (!ints) return {};
    const bool scalar = t.shape->empty();
    if (scalar ? ints->size() != 1
               : !((*t.shape)[0].known() &&
                   static_cast<size_t>((*t.shape)[0].value) == ints->size())) {
      return {};
    }
    Dims dims = scalar ? Dims{} : Dims{static_cast<int64_t>(ints->size())};
    Tensor c(t.elem, dims);
    for (size_t i = 0; i < ints->size(); ++i) {
      if (t.elem == DType::I64) {
        c.data<int64_t>()[i] = (*ints)[i];
      } else {
        c.data<int32_t>()[i] = static_cast<int32_t>((*ints)[i]);
      }
    }
    return c;
  }

  InferenceOptions options_;
};

}  // namespace

InferenceSummary infer_shapes(ir::Graph& g, const InferenceOptions& options) {
  Inferer inferer(options);
  Scope scope;
  scope.graph = &g;
  inferer.run(scope);
  if (options.values) *options.values = std::move(scope.values);
  return inferer.summary;
}

void infer_shapes(ir::Graph& g) {
  infer_shapes(g, InferenceOptions{});
}

}  // namespace kpt::analysis
