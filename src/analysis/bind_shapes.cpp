#include "analysis/bind_shapes.hpp"

#include <algorithm>
#include <set>

#include "kpt/error.hpp"

namespace kpt::analysis {

std::map<std::string, int64_t> bind_input_shapes(ir::Graph& g,
                                                 const std::map<std::string, Dims>& shapes) {
  std::map<std::string, int64_t> symbols;
  for (const auto& [name, dims] : shapes) {
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(),
                           [&](const ir::ValueInfo& v) { return v.name == name; });
    if (it == g.inputs.end()) {
      std::string names;
      for (const auto& i : g.inputs) names += (names.empty() ? "" : ", ") + i.name;
      fail("--shape names '" + name + "', which is not an input of the model (inputs: " + names +
           ")");
    }
    ir::Type& t = it->type;
    check(t.kind == ir::Type::Kind::Tensor, "input '" + name + "' is not a tensor");
    if (t.shape) {
      check(t.shape->size() == dims.size(),
            "input '" + name + "' has rank " + std::to_string(t.shape->size()) +
                " but --shape gives " + std::to_string(dims.size()) + " dims");
      for (size_t k = 0; k < dims.size(); ++k) {
        const ir::Dim& d = (*t.shape)[k];
        check(!d.known() || d.value == dims[k],
              "input '" + name + "' has fixed dim " + std::to_string(d.value) + " at axis " +
                  std::to_string(k) + ", but --shape gives " + std::to_string(dims[k]));
        if (!d.known() && !d.symbol.empty()) {
          auto [s, inserted] = symbols.emplace(d.symbol, dims[k]);
          check(inserted || s->second == dims[k], "--shape gives symbol '" + d.symbol +
                                                      "' two values: " + std::to_string(s->second) +
                                                      " and " + std::to_string(dims[k]));
        }
      }
    }
    ir::Shape bound;
    for (int64_t d : dims) bound.push_back(ir::Dim::of(d));
    t.shape = bound;
  }
  for (auto& input : g.inputs) {
    if (input.type.kind != ir::Type::Kind::Tensor || !input.type.shape) continue;
    for (auto& d : *input.type.shape) {
      auto s = symbols.find(d.symbol);
      if (!d.known() && s != symbols.end()) d = ir::Dim::of(s->second);
    }
  }
  return symbols;
}

std::vector<std::string> bind_unknown_dims(ir::Graph& g, int64_t value) {
  std::vector<std::string> bound;
  std::set<std::string> seen;
  for (auto& input : g.inputs) {
    if (input.type.kind != ir::Type::Kind::Tensor || !input.type.shape) continue;
    for (size_t k = 0; k < input.type.shape->size(); ++k) {
      ir::Dim& d = (*input.type.shape)[k];
      if (d.known()) continue;
      std::string label = d.symbol.empty() ? input.name + "[" + std::to_string(k) + "]" : d.symbol;
      if (seen.insert(label).second) bound.push_back(label);
      d = ir::Dim::of(value);
    }
  }
  return bound;
}

}  // namespace kpt::analysis
