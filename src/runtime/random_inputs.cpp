#include "runtime/random_inputs.hpp"

#include <algorithm>
#include <deque>
#include <random>
#include <set>

#include "core/cast.hpp"
#include "ir/graph.hpp"
#include "kpt/error.hpp"

namespace kpt::runtime {

namespace {

// "[batch,seq]" with symbols spelled out, for messages about declared shapes.
std::string declared_shape(const IoInfo& info) {
  if (!info.has_shape) return "(no declared shape)";
  std::string s = "[";
  for (size_t i = 0; i < info.dims.size(); ++i) {
    if (i) s += ",";
    if (info.dims[i] >= 0) {
      s += std::to_string(info.dims[i]);
    } else {
      s += info.symbols[i].empty() ? "?" : info.symbols[i];
    }
  }
  return s + "]";
}

// Ops that carry index values through unchanged (only their shape or type changes), through
// their first input.
bool passes_values_through(const std::string& op) {
  static const std::set<std::string> ops = {"Cast",    "Reshape",  "Unsqueeze", "Squeeze",
                                            "Flatten", "Identity", "Expand"};
  return ops.count(op) != 0;
}

}  // namespace

bool is_mask_input(const IoInfo& info) {
  return info.name.find("mask") != std::string::npos && info.dtype != DType::String;
}

Dims parse_dims(const std::string& text) {
  Dims dims;
  if (text.empty()) return dims;
  size_t start = 0;
  while (start <= text.size()) {
    size_t x = text.find('x', start);
    std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    check(!part.empty() && part.size() <= 15 &&
              part.find_first_not_of("0123456789") == std::string::npos,
          "bad dims '" + text + "': expected sizes joined by 'x', like 8x128");
    dims.push_back(std::stoll(part));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return dims;
}

Tensor random_tensor(DType dtype, const Dims& dims, uint64_t seed, int64_t int_limit) {
  check(int_limit > 0, "random integers need a positive limit, got " + std::to_string(int_limit));
  std::mt19937_64 rng(seed);
  Tensor f(DType::F64, dims);
  const int64_t n = f.numel();
  if (is_float(dtype)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = u(rng);
  } else if (dtype == DType::Bool) {
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = static_cast<double>(rng() & 1);
  } else {
    check(is_integer(dtype), "cannot make random values of type " + std::string(dtype_name(dtype)));
    const auto limit = static_cast<uint64_t>(int_limit);
    for (int64_t i = 0; i < n; ++i) f.data<double>()[i] = static_cast<double>(rng() % limit);
  }
  return cast_tensor(f, dtype);
}

Tensor random_input(const IoInfo& info, const std::map<std::string, int64_t>& dim_values,
                    uint64_t seed) {
  check(info.kind == "tensor", "input '" + info.name + "' is a " + info.kind +
                                   "; random values can only be made for tensors");
  check(info.has_shape,
        "input '" + info.name + "' declares no shape; give it with --shape " + info.name + "=DIMS");
  Dims dims = info.dims;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] >= 0) continue;
    auto it = dim_values.find(info.symbols[i]);
    dims[i] = it == dim_values.end() ? 1 : it->second;
  }
  // A mask input attends everywhere: random values would mask positions at random.
  if (is_mask_input(info)) {
    Tensor ones(DType::F64, dims);
    for (int64_t i = 0; i < ones.numel(); ++i) ones.data<double>()[i] = 1.0;
    return cast_tensor(ones, info.dtype);
  }
  return random_tensor(info.dtype, dims, seed);
}

std::optional<int64_t> index_limit(const ir::Graph& g, const std::string& value) {
  std::map<std::string, std::vector<const ir::Node*>> readers;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) {
      if (!in.empty()) readers[in].push_back(&n);
    }
  }
  std::optional<int64_t> limit;
  std::set<std::string> seen = {value};
  std::deque<std::string> todo = {value};
  while (!todo.empty()) {
    const std::string v = todo.front();
    todo.pop_front();
    for (const ir::Node* n : readers[v]) {
      if (passes_values_through(n->op_type) && n->inputs[0] == v) {
        for (const auto& out : n->outputs) {
          if (seen.insert(out).second) todo.push_back(out);
        }
      } else if (n->op_type == "Gather" && n->domain.empty() && n->inputs.size() >= 2 &&
                 n->inputs[1] == v) {
        auto table = g.initializers.find(n->inputs[0]);
        if (table == g.initializers.end() || table->second.rank() == 0) continue;
        const int64_t rank = static_cast<int64_t>(table->second.rank());
        int64_t axis = n->attr_int("axis", 0);
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) continue;
        const int64_t rows = table->second.dims()[static_cast<size_t>(axis)];
        limit = limit ? std::min(*limit, rows) : rows;
      }
    }
  }
  return limit;
}

std::map<std::string, Dims> resolve_input_dims(const std::vector<IoInfo>& inputs,
                                               const std::map<std::string, Dims>& shapes,
                                               const std::map<std::string, Dims>& given) {
  std::string names;
  for (const auto& info : inputs) names += (names.empty() ? "" : ", ") + info.name;
  std::map<std::string, Dims> fixed = given;
  for (const auto& [name, dims] : shapes) {
    check(!given.count(name), "input '" + name + "' is given twice (as a file and as dims)");
    fixed[name] = dims;
  }
  // Symbol values from every input whose dims are fixed, checked against the declarations.
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // symbol -> (size, from input)
  for (const auto& [name, dims] : fixed) {
    auto info =
        std::find_if(inputs.begin(), inputs.end(), [&](const IoInfo& i) { return i.name == name; });
    check(info != inputs.end(),
          "--input " + name + ": the model has no input of that name; its inputs are: " + names);
    if (!info->has_shape) continue;
    check(dims.size() == info->dims.size(), [&] {
      return "--input " + name + "=" + dims_to_string(dims) + ": the model declares rank " +
             std::to_string(info->dims.size()) + " (shape " + declared_shape(*info) + ")";
    });
    for (size_t d = 0; d < dims.size(); ++d) {
      check(info->dims[d] < 0 || info->dims[d] == dims[d], [&] {
        return "--input " + name + "=" + dims_to_string(dims) + ": dim " + std::to_string(d) +
               " must be " + std::to_string(info->dims[d]) + " (declared shape " +
               declared_shape(*info) + ")";
      });
      const std::string& sym = info->symbols[d];
      if (info->dims[d] >= 0 || sym.empty()) continue;
      auto [it, inserted] = symbols.try_emplace(sym, dims[d], name);
      check(inserted || it->second.first == dims[d],
            "dim '" + sym + "' is " + std::to_string(it->second.first) + " for input '" +
                it->second.second + "' but " + std::to_string(dims[d]) + " for input '" + name +
                "'");
    }
  }
  std::map<std::string, Dims> result;
  for (const auto& info : inputs) {
    if (auto it = fixed.find(info.name); it != fixed.end()) {
      result[info.name] = it->second;
      continue;
    }
    check(info.has_shape, "input '" + info.name +
                              "' declares no shape; give its dims with --input " + info.name +
                              "=DIMS or a file with --input " + info.name + "=FILE.npy");
    Dims dims = info.dims;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] >= 0) continue;
      auto sym = symbols.find(info.symbols[d]);
      check(!info.symbols[d].empty() && sym != symbols.end(),
            "input '" + info.name + "' has declared shape " + declared_shape(info) + " and dim " +
                std::to_string(d) + " (" +
                (info.symbols[d].empty() ? std::string("unnamed") : "'" + info.symbols[d] + "'") +
                ") is not fixed by any other input; give it with --input " + info.name + "=DIMS");
      dims[d] = sym->second.first;
    }
    result[info.name] = dims;
  }
  return result;
}

std::map<std::string, Tensor> make_valid_inputs(const ir::Graph& g,
                                                const std::vector<IoInfo>& inputs,
                                                const std::map<std::string, Dims>& shapes,
                                                const std::map<std::string, Tensor>& given,
                                                uint64_t seed) {
  std::map<std::string, Dims> given_dims;
  for (const auto& [name, t] : given) given_dims[name] = t.dims();
  const auto dims = resolve_input_dims(inputs, shapes, given_dims);
  std::map<std::string, Tensor> result;
  for (const auto& info : inputs) {
    ++seed;  // one stream per input position, whether or not it is given
    if (auto it = given.find(info.name); it != given.end()) {
      result[info.name] = it->second;
      continue;
    }
    check(info.kind == "tensor", "input '" + info.name + "' is a " + info.kind +
                                     "; random values can only be made for tensors");
    const Dims& d = dims.at(info.name);
    if (is_mask_input(info)) {
      Tensor ones(DType::F64, d);
      for (int64_t i = 0; i < ones.numel(); ++i) ones.data<double>()[i] = 1.0;
      result[info.name] = cast_tensor(ones, info.dtype);
      continue;
    }
    int64_t limit = 10;
    if (is_integer(info.dtype)) {
      if (auto rows = index_limit(g, info.name)) {
        check(*rows > 0, "input '" + info.name + "' indexes an empty table; no valid index exists");
        limit = *rows;
      }
    }
    result[info.name] = random_tensor(info.dtype, d, seed, limit);
  }
  return result;
}

}  // namespace kpt::runtime
