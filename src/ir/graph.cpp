#include "ir/graph.hpp"

#include <algorithm>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "kpt/error.hpp"

namespace kpt::ir {

std::string shape_to_string(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += s[i].known() ? std::to_string(s[i].value) : (s[i].symbol.empty() ? "?" : s[i].symbol);
  }
  return r + "]";
}

std::string Type::to_string() const {
  switch (kind) {
    case Kind::Tensor:
      return std::string(dtype_name(elem)) + (shape ? shape_to_string(*shape) : "[*]");
    case Kind::Sequence:
      return "seq(" + (inner ? inner->to_string() : "?") + ")";
    case Kind::Optional:
      return "optional(" + (inner ? inner->to_string() : "?") + ")";
    case Kind::Map:
      return "map";
    case Kind::SparseTensor:
      return "sparse " + std::string(dtype_name(elem));
    default:
      return "?";
  }
}

const Attribute* Node::attr(const std::string& n) const {
  auto it = attrs.find(n);
  return it == attrs.end() ? nullptr : &it->second;
}

namespace {
const Attribute* typed(const Node& node, const std::string& n, Attribute::Kind k,
                       const char* kind_name) {
  const Attribute* a = node.attr(n);
  if (!a) return nullptr;
  if (a->kind != k) {
    fail(node.label() + ": attribute '" + n + "' must be of type " + kind_name);
  }
  return a;
}
}  // namespace

int64_t Node::attr_int(const std::string& n, int64_t dflt) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Int, "int");
  return a ? a->i : dflt;
}
float Node::attr_float(const std::string& n, float dflt) const {
  const Attribute* a = attr(n);
  if (a && a->kind == Attribute::Kind::Int) return static_cast<float>(a->i);
  a = typed(*this, n, Attribute::Kind::Float, "float");
  return a ? a->f : dflt;
}
std::string Node::attr_string(const std::string& n, const std::string& dflt) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::String, "string");
  return a ? a->s : dflt;
}
std::vector<int64_t> Node::attr_ints(const std::string& n, std::vector<int64_t> dflt) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Ints, "ints");
  return a ? a->ints : dflt;
}
std::vector<float> Node::attr_floats(const std::string& n, std::vector<float> dflt) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Floats, "floats");
  return a ? a->floats : dflt;
}
std::vector<std::string> Node::attr_strings(const std::string& n,
                                            std::vector<std::string> dflt) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Strings, "strings");
  return a ? a->strings : dflt;
}
const Tensor* Node::attr_tensor(const std::string& n) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Tensor, "tensor");
  return a ? &a->t : nullptr;
}
const Graph* Node::attr_graph(const std::string& n) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Graph, "graph");
  return a ? a->g.get() : nullptr;
}

std::string Node::label() const {
  std::string d = domain.empty() ? "" : domain + ".";
  return d + op_type + " node '" + name + "'";
}

const Type* Graph::type_of(const std::string& value) const {
  for (const auto& i : inputs) {
    if (i.name == value) return &i.type;
  }
  auto it = value_types.find(value);
  if (it != value_types.end()) return &it->second;
  for (const auto& o : outputs) {
    if (o.name == value) return &o.type;
  }
  return nullptr;
}

std::vector<std::string> Graph::defined_values() const {
  std::vector<std::string> v;
  for (const auto& i : inputs) v.push_back(i.name);
  for (const auto& [n, t] : initializers) v.push_back(n);
  for (const auto& node : nodes) {
    for (const auto& o : node.outputs) {
      if (!o.empty()) v.push_back(o);
    }
  }
  return v;
}

namespace {

// Values a subgraph reads from enclosing scopes (used names it does not define itself).
void collect_outer_uses(const Graph& g, std::set<std::string>& out) {
  std::unordered_set<std::string> defined;
  for (const auto& n : g.defined_values()) defined.insert(n);
  for (const auto& node : g.nodes) {
    for (const auto& i : node.inputs) {
      if (!i.empty() && !defined.count(i)) out.insert(i);
    }
    for (const auto& [name, a] : node.attrs) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& sg : a.graphs) subs.push_back(sg.get());
      for (const Graph* sg : subs) {
        std::set<std::string> inner;
        collect_outer_uses(*sg, inner);
        for (const auto& x : inner) {
          if (!defined.count(x)) out.insert(x);
        }
      }
    }
  }
}

}  // namespace

std::set<std::string> outer_uses(const Graph& g) {
  std::set<std::string> out;
  collect_outer_uses(g, out);
  return out;
}

void sort_and_verify(Graph& g, const std::vector<std::string>& outer) {
  std::unordered_set<std::string> available(outer.begin(), outer.end());
  std::unordered_map<std::string, size_t> producer;
  for (const auto& i : g.inputs) available.insert(i.name);
  for (const auto& [n, t] : g.initializers) available.insert(n);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (const auto& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      if (producer.count(o)) {
        fail("value '" + o + "' is produced by both " + g.nodes[producer[o]].label() + " and " +
             g.nodes[k].label());
      }
      producer[o] = k;
    }
  }
  // Each node's dependencies: its inputs and whatever its subgraphs read from this scope.
  std::vector<std::vector<std::string>> deps(g.nodes.size());
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& node = g.nodes[k];
    std::set<std::string> uses;
    for (const auto& i : node.inputs) {
      if (!i.empty()) uses.insert(i);
    }
    for (const auto& [name, a] : node.attrs) {
      if (a.g) collect_outer_uses(*a.g, uses);
      for (const auto& sg : a.graphs) collect_outer_uses(*sg, uses);
    }
    for (const auto& u : uses) {
      if (!available.count(u) && !producer.count(u)) {
        fail(node.label() + " uses value '" + u + "', which nothing defines");
      }
      if (producer.count(u)) deps[k].push_back(u);
    }
  }
  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::vector<int> pending(g.nodes.size(), 0);
  std::unordered_map<std::string, std::vector<size_t>> users;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    pending[k] = static_cast<int>(deps[k].size());
    for (const auto& d : deps[k]) users[d].push_back(k);
  }
  std::vector<size_t> order;
  std::vector<size_t> ready;
  for (size_t k = g.nodes.size(); k-- > 0;) {
    if (pending[k] == 0) ready.push_back(k);
  }
  while (!ready.empty()) {
    size_t k = ready.back();
    ready.pop_back();
    order.push_back(k);
    std::vector<size_t> next;
    for (const auto& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      for (size_t u : users[o]) {
        if (--pending[u] == 0) next.push_back(u);
      }
    }
    std::sort(next.rbegin(), next.rend());
    for (size_t u : next) ready.push_back(u);
    std::sort(ready.rbegin(), ready.rend());
  }
  if (order.size() != g.nodes.size()) {
    std::string names;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      if (pending[k] > 0) names += (names.empty() ? "" : ", ") + g.nodes[k].label();
    }
    fail("the graph has a cycle through " + names);
  }
  std::vector<Node> sorted;
  sorted.reserve(order.size());
  for (size_t k : order) sorted.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(sorted);
  for (const auto& o : g.outputs) {
    if (!available.count(o.name) && !producer.count(o.name)) {
      fail("graph output '" + o.name + "' is never produced");
    }
  }
  // Subgraphs see every value of this scope.
  std::vector<std::string> scope(available.begin(), available.end());
  for (const auto& [n, k] : producer) scope.push_back(n);
  for (auto& node : g.nodes) {
    for (auto& [name, a] : node.attrs) {
      if (a.g) sort_and_verify(*a.g, scope);
      for (auto& sg : a.graphs) sort_and_verify(*sg, scope);
    }
  }
}

namespace {
void print_into(const Graph& g, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  out += pad + "graph " + (g.name.empty() ? "(unnamed)" : g.name) + " {\n";
  for (const auto& i : g.inputs)
    out += pad + "  input  " + i.name + ": " + i.type.to_string() + "\n";
  for (const auto& [n, t] : g.initializers)
    out += pad + "  weight " + n + ": " + t.describe() + "\n";
  for (const auto& node : g.nodes) {
    out += pad + "  ";
    for (size_t k = 0; k < node.outputs.size(); ++k) out += (k ? ", " : "") + node.outputs[k];
    out += " = " + (node.domain.empty() ? "" : node.domain + ".") + node.op_type + "(";
    for (size_t k = 0; k < node.inputs.size(); ++k) out += (k ? ", " : "") + node.inputs[k];
    out += ")";
    bool first = true;
    for (const auto& [n, a] : node.attrs) {
      out += first ? " {" : ", ";
      first = false;
      out += n;
      switch (a.kind) {
        case Attribute::Kind::Int:
          out += "=" + std::to_string(a.i);
          break;
        case Attribute::Kind::Float:
          out += "=" + std::to_string(a.f);
          break;
        case Attribute::Kind::String:
          out += "=\"" + a.s + "\"";
          break;
        case Attribute::Kind::Ints: {
          out += "=[";
          for (size_t k = 0; k < a.ints.size(); ++k)
            out += (k ? "," : "") + std::to_string(a.ints[k]);
          out += "]";
          break;
        }
        case Attribute::Kind::Tensor:
          out += "=" + a.t.describe();
          break;
        default:
          break;
      }
    }
    if (!first) out += "}";
    out += "\n";
    for (const auto& [n, a] : node.attrs) {
      if (a.g) print_into(*a.g, indent + 4, out);
      for (const auto& sg : a.graphs) print_into(*sg, indent + 4, out);
    }
  }
  for (const auto& o : g.outputs)
    out += pad + "  output " + o.name + ": " + o.type.to_string() + "\n";
  out += pad + "}\n";
}

int depth_of(const Graph& g) {
  int d = 0;
  for (const auto& node : g.nodes) {
    for (const auto& [n, a] : node.attrs) {
      if (a.g) d = std::max(d, 1 + depth_of(*a.g));
      for (const auto& sg : a.graphs) d = std::max(d, 1 + depth_of(*sg));
    }
  }
  return d;
}
}  // namespace

std::string print(const Graph& g) {
  std::string out;
  print_into(g, 0, out);
  return out;
}

int subgraph_depth(const Graph& g) {
  return depth_of(g);
}

}  // namespace kpt::ir
