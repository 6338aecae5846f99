#include "runtime/shape_buckets.hpp"

#include <algorithm>
#include <cstring>

#include "kpt/error.hpp"
#include "runtime/random_inputs.hpp"

namespace kpt {

namespace {

const char* kSpecHelp =
    "expected NAME=SIZES separated by ';', like \"batch=1,8,32;seq=128,512\" (NAME~=SIZES: "
    "paddable, NAME==SIZES: never padded)";

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

std::string join_sizes(const std::vector<int64_t>& sizes) {
  std::string s;
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? "," : "") + std::to_string(sizes[i]);
  return s;
}

}  // namespace

ShapeBuckets parse_shape_buckets(const std::string& spec) {
  ShapeBuckets buckets;
  for (const std::string& raw : split(spec, ';')) {
    const std::string part = trim(raw);
    if (part.empty()) continue;
    const std::string where = "shape buckets '" + part + "': ";
    const size_t eq = part.find('=');
    check(eq != std::string::npos, where + kSpecHelp);
    std::string name = trim(part.substr(0, eq));
    std::string sizes_text = part.substr(eq + 1);
    ShapeBuckets::Symbol symbol;
    if (!name.empty() && name.back() == '~') {
      symbol.padding = ShapeBuckets::Padding::Always;
      name = trim(name.substr(0, name.size() - 1));
    } else if (!sizes_text.empty() && sizes_text.front() == '=') {
      symbol.padding = ShapeBuckets::Padding::Never;
      sizes_text = sizes_text.substr(1);
    }
    check(!name.empty() && name.find_first_of(" \t,~=") == std::string::npos,
          where + "expected a symbol name before '=', " + kSpecHelp);
    check(!buckets.symbols.count(name), where + "symbol '" + name + "' is declared twice");
    for (const std::string& raw_size : split(sizes_text, ',')) {
      const std::string size = trim(raw_size);
      check(!size.empty() && size.size() <= 15 &&
                size.find_first_not_of("0123456789") == std::string::npos,
            where + "size '" + size + "' is not a positive integer; " + kSpecHelp);
      const int64_t v = std::stoll(size);
      check(v > 0, where + "sizes must be positive, got " + size);
      check(std::find(symbol.sizes.begin(), symbol.sizes.end(), v) == symbol.sizes.end(),
            where + "size " + size + " is given twice");
      symbol.sizes.push_back(v);
    }
    std::sort(symbol.sizes.begin(), symbol.sizes.end());
    buckets.symbols[name] = std::move(symbol);
  }
  check(!buckets.empty(), "shape buckets '" + spec + "': no symbol declared; " + kSpecHelp);
  return buckets;
}

std::string to_string(const ShapeBuckets& buckets) {
  std::string s;
  for (const auto& [name, symbol] : buckets.symbols) {
    if (!s.empty()) s += ";";
    s += name;
    if (symbol.padding == ShapeBuckets::Padding::Always) s += "~";
    s += symbol.padding == ShapeBuckets::Padding::Never ? "==" : "=";
    s += join_sizes(symbol.sizes);
  }
  return s;
}

namespace runtime {

namespace {

// The names a derived symbol ("12*batch*seq", "(seq+1)") is made of.
std::vector<std::string> symbol_atoms(const std::string& symbol) {
  std::vector<std::string> atoms;
  std::string cur;
  for (char c : symbol + "*") {
    if (std::strchr("*+-/() ", c)) {
      if (!cur.empty()) atoms.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return atoms;
}

bool is_dynamic(const IoInfo& info, size_t d) {
  return info.dims[d] < 0 && !info.symbols[d].empty();
}

bool carries(const IoInfo& info, const std::string& symbol) {
  if (!info.has_shape) return false;
  for (size_t d = 0; d < info.dims.size(); ++d) {
    if (is_dynamic(info, d) && info.symbols[d] == symbol) return true;
  }
  return false;
}

}  // namespace

BucketRouter::BucketRouter(ShapeBuckets buckets, const std::vector<IoInfo>& inputs,
                           const std::vector<IoInfo>& outputs)
    : buckets_(std::move(buckets)), inputs_(inputs), outputs_(outputs) {
  for (const auto& info : inputs_) {
    if (!info.has_shape) continue;
    for (size_t d = 0; d < info.dims.size(); ++d) {
      if (is_dynamic(info, d) &&
          std::find(symbols_.begin(), symbols_.end(), info.symbols[d]) == symbols_.end()) {
        symbols_.push_back(info.symbols[d]);
      }
    }
  }
  std::string known;
  for (const auto& s : symbols_) known += (known.empty() ? "" : ", ") + s;
  for (const auto& [name, symbol] : buckets_.symbols) {
    check(std::find(symbols_.begin(), symbols_.end(), name) != symbols_.end(),
          "shape buckets: '" + name + "' is not a symbol of the model's inputs; " +
              (known.empty() ? std::string("the model's inputs have no named dynamic dims")
                             : "the model's input symbols are: " + known));
  }

  for (const auto& [name, symbol] : buckets_.symbols) {
    std::string why;
    if (symbol.padding == ShapeBuckets::Padding::Never) {
      not_paddable_[name] = "declared never padded (" + name + "==)";
      continue;
    }
    if (symbol.padding == ShapeBuckets::Padding::Always) {
      why = "declared paddable (" + name + "~=)";
    } else {
      bool leading = true;
      for (const auto* list : {&inputs_, &outputs_}) {
        for (const auto& info : *list) {
          leading = leading && info.has_shape && !info.dims.empty() && is_dynamic(info, 0) &&
                    info.symbols[0] == name;
        }
      }
      if (leading) why = "dim 0 of every input and output: rows are independent";
      for (const auto& info : inputs_) {
        if (why.empty() && is_mask_input(info) && carries(info, name)) {
          why = "in mask input '" + info.name + "': padded positions are masked out";
        }
      }
      if (why.empty()) {
        not_paddable_[name] =
            "neither the batch dim nor in a mask input; declare " + name + "~= to pad it";
        continue;
      }
    }
    // Padding needs every input carrying the symbol to be a tensor of numbers, and every
    // output's axes known, so the outputs can be sliced back.
    std::string problem;
    for (const auto& info : inputs_) {
      if (!problem.empty() || !carries(info, name)) continue;
      if (info.kind != "tensor" || info.dtype == DType::String) {
        problem = "input '" + info.name + "' is not a tensor of numbers";
      }
    }
    for (const auto& info : outputs_) {
      if (!problem.empty()) break;
      if (info.kind != "tensor" || !info.has_shape) {
        problem = "output '" + info.name + "' has no known shape";
        break;
      }
      for (size_t d = 0; d < info.dims.size() && problem.empty(); ++d) {
        if (info.dims[d] >= 0) continue;
        const std::string& sym = info.symbols[d];
        const std::string at = "output '" + info.name + "' dim " + std::to_string(d);
        if (sym.empty()) {
          problem = at + " is unknown";
        } else if (sym != name) {
          const auto atoms = symbol_atoms(sym);
          if (std::find(atoms.begin(), atoms.end(), name) != atoms.end()) {
            problem = at + " is '" + sym + "', derived from " + name;
          }
        }
      }
    }
    if (problem.empty()) {
      paddable_[name] = why;
    } else {
      not_paddable_[name] = why + ", but " + problem + "; its buckets run unpadded";
    }
  }
}

std::optional<std::map<std::string, int64_t>> symbol_sizes(
    const std::vector<IoInfo>& infos, const std::map<std::string, Value>& inputs) {
  std::map<std::string, int64_t> sizes;
  for (const auto& info : infos) {
    auto it = inputs.find(info.name);
    if (it == inputs.end() || !it->second.is_tensor() || !info.has_shape) continue;
    const Dims& dims = it->second.tensor.dims();
    if (dims.size() != info.dims.size()) return std::nullopt;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (!is_dynamic(info, d)) continue;
      auto [at, inserted] = sizes.emplace(info.symbols[d], dims[d]);
      if (!inserted && at->second != dims[d]) return std::nullopt;
    }
  }
  return sizes;
}

std::map<std::string, Dims> input_dims_for(const std::vector<IoInfo>& infos,
                                           const std::map<std::string, int64_t>& sizes) {
  std::map<std::string, Dims> result;
  for (const auto& info : infos) {
    if (info.kind != "tensor") continue;
    check(info.has_shape, "input '" + info.name + "' has no declared shape to size");
    Dims dims = info.dims;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] >= 0) continue;
      check(!info.symbols[d].empty(), "input '" + info.name + "' dim " + std::to_string(d) +
                                          " is dynamic and unnamed; a symbol size cannot set it");
      auto s = sizes.find(info.symbols[d]);
      check(s != sizes.end(),
            "no size for symbol '" + info.symbols[d] + "' of input '" + info.name + "'");
      dims[d] = s->second;
    }
    result[info.name] = dims;
  }
  return result;
}

BucketRoute BucketRouter::route(const std::map<std::string, Value>& inputs) const {
  BucketRoute r;
  auto sizes = symbol_sizes(inputs_, inputs);
  if (!sizes) return r;  // inconsistent: the model decides
  r.given = *sizes;
  r.run = r.given;
  bool all_declared = true, padded = false;
  for (const auto& [name, size] : r.given) {
    auto b = buckets_.symbols.find(name);
    if (b == buckets_.symbols.end()) {
      all_declared = false;
      continue;
    }
    const auto& sizes = b->second.sizes;
    auto above = std::lower_bound(sizes.begin(), sizes.end(), size);
    if (above == sizes.end()) return BucketRoute{BucketRoute::Kind::Exact, r.given, r.given, false};
    if (*above == size) continue;
    if (!paddable(name)) return BucketRoute{BucketRoute::Kind::Exact, r.given, r.given, false};
    r.run[name] = *above;
    padded = true;
  }
  r.kind = padded ? BucketRoute::Kind::Padded : BucketRoute::Kind::Bucket;
  r.pinned = all_declared;
  return r;
}

std::map<std::string, Value> BucketRouter::pad(const std::map<std::string, Value>& inputs,
                                               const BucketRoute& route) const {
  std::map<std::string, Value> padded = inputs;
  for (const auto& info : inputs_) {
    auto it = padded.find(info.name);
    if (it == padded.end() || !it->second.is_tensor() || !info.has_shape) continue;
    const Tensor& t = it->second.tensor;
    Dims to = t.dims();
    for (size_t d = 0; d < to.size(); ++d) {
      if (is_dynamic(info, d)) to[d] = route.run.at(info.symbols[d]);
    }
    if (to == t.dims()) continue;
    Tensor bigger(t.dtype(), to);  // zeros: ids 0, values 0, mask 0 (masked out)
    copy_block(t.raw(), t.dims(), bigger.raw(), to, t.dims(), dtype_size(t.dtype()));
    it->second = Value::of(bigger);
  }
  return padded;
}

void BucketRouter::slice(std::vector<Value>& outputs, const BucketRoute& route) const {
  for (size_t i = 0; i < outputs.size() && i < outputs_.size(); ++i) {
    const IoInfo& info = outputs_[i];
    if (!outputs[i].is_tensor()) continue;
    const Tensor& t = outputs[i].tensor;
    check(t.rank() == info.dims.size(),
          "shape buckets: output '" + info.name + "' has shape " + dims_to_string(t.dims()) +
              ", expected rank " + std::to_string(info.dims.size()) + " as inferred at load");
    Dims to = t.dims();
    for (size_t d = 0; d < to.size(); ++d) {
      if (info.dims[d] >= 0) continue;
      auto given = route.given.find(info.symbols[d]);
      if (given == route.given.end() || given->second == route.run.at(given->first)) continue;
      check(to[d] == route.run.at(given->first),
            "shape buckets: output '" + info.name + "' dim " + std::to_string(d) + " is " +
                std::to_string(to[d]) + ", expected the bucket size " +
                std::to_string(route.run.at(given->first)) + " of '" + given->first + "'");
      to[d] = given->second;
    }
    if (to == t.dims()) continue;
    Tensor cut = Tensor::uninitialized(t.dtype(), to);
    copy_block(t.raw(), t.dims(), cut.raw(), to, to, dtype_size(t.dtype()));
    outputs[i] = Value::of(cut);
  }
}

std::vector<std::map<std::string, int64_t>> BucketRouter::combinations(
    const std::map<std::string, int64_t>& other_sizes) const {
  std::vector<std::map<std::string, int64_t>> all = {{}};
  for (const auto& name : symbols_) {
    std::vector<int64_t> sizes;
    if (auto b = buckets_.symbols.find(name); b != buckets_.symbols.end()) {
      sizes = b->second.sizes;
    } else if (auto o = other_sizes.find(name); o != other_sizes.end()) {
      sizes = {o->second};
    } else {
      fail("shape buckets: input symbol '" + name + "' has no bucket sizes; declare them (" + name +
           "=1,8) or give its size to warm the buckets");
    }
    std::vector<std::map<std::string, int64_t>> next;
    for (const auto& partial : all) {
      for (int64_t s : sizes) {
        auto m = partial;
        m[name] = s;
        next.push_back(std::move(m));
      }
    }
    all = std::move(next);
  }
  return all;
}

std::string BucketRouter::report() const {
  std::string s;
  for (const auto& [name, symbol] : buckets_.symbols) {
    s += "bucket     " + name + " = " + join_sizes(symbol.sizes) + ": ";
    if (auto p = paddable_.find(name); p != paddable_.end()) {
      s += "padded up to the next bucket (" + p->second + ")\n";
    } else {
      s += "exact sizes only (" + not_paddable_.at(name) + ")\n";
    }
  }
  return s;
}

void copy_block(const void* src, const Dims& src_dims, void* dst, const Dims& dst_dims,
                const Dims& block, size_t elem) {
  const size_t rank = block.size();
  if (element_count(block) == 0) return;
  // Trailing axes the block spans whole in both tensors form one contiguous run.
  size_t k = rank;
  size_t run = elem;
  while (k > 0 && block[k - 1] == src_dims[k - 1] && block[k - 1] == dst_dims[k - 1]) {
    run *= static_cast<size_t>(block[k - 1]);
    --k;
  }
  if (k > 0) run *= static_cast<size_t>(block[k - 1]);  // the row of axis k-1 is contiguous too
  const size_t outer_axes = k > 0 ? k - 1 : 0;
  std::vector<size_t> src_stride(rank + 1, elem), dst_stride(rank + 1, elem);
  for (size_t d = rank; d-- > 0;) {
    src_stride[d] = src_stride[d + 1] * static_cast<size_t>(src_dims[d]);
    dst_stride[d] = dst_stride[d + 1] * static_cast<size_t>(dst_dims[d]);
  }
  const auto* s = static_cast<const char*>(src);
  auto* t = static_cast<char*>(dst);
  std::vector<int64_t> index(outer_axes, 0);
  while (true) {
    size_t so = 0, to = 0;
    for (size_t d = 0; d < outer_axes; ++d) {
      so += static_cast<size_t>(index[d]) * src_stride[d + 1];
      to += static_cast<size_t>(index[d]) * dst_stride[d + 1];
    }
    std::memcpy(t + to, s + so, run);
    size_t d = outer_axes;
    while (d > 0) {
      if (++index[d - 1] < block[d - 1]) break;
      index[d - 1] = 0;
      --d;
    }
    if (d == 0) return;
  }
}

}  // namespace runtime
}  // namespace kpt
