#include "analysis/symbolic_dim.hpp"

#include <algorithm>

#include "kpt/error.hpp"

namespace kpt::analysis {

namespace {

// A dim as coefficient * product of symbolic atoms; `valid` is false for unnamed unknowns.
struct Product {
  bool valid = true;
  int64_t coefficient = 1;
  std::vector<std::string> atoms;  // sorted
};

Product factor(const ir::Dim& d) {
  Product p;
  if (auto v = dim_int(d)) {
    p.coefficient = *v;
    return p;
  }
  if (d.symbol.empty()) {
    p.valid = false;
    return p;
  }
  // Split on '*' outside parentheses.
  int depth = 0;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    bool numeric = std::all_of(cur.begin(), cur.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric && cur.size() < 18) {
      p.coefficient *= std::stoll(cur);
    } else {
      p.atoms.push_back(cur);
    }
    cur.clear();
  };
  for (char c : d.symbol) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '*' && depth == 0) {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  std::sort(p.atoms.begin(), p.atoms.end());
  return p;
}

ir::Dim from_product(const Product& p) {
  if (!p.valid) return ir::Dim{};
  if (p.atoms.empty()) return int_dim(p.coefficient);
  if (p.coefficient == 0) return ir::Dim::of(0);
  std::string s = p.coefficient == 1 ? "" : std::to_string(p.coefficient);
  for (const auto& a : p.atoms) s += (s.empty() ? "" : "*") + a;
  return ir::Dim::sym(s);
}

std::string atom_text(const ir::Dim& d) {
  if (d.known()) return std::to_string(d.value);
  bool compound = d.symbol.find_first_of("*+-") != std::string::npos && d.symbol.front() != '(';
  return compound ? "(" + d.symbol + ")" : d.symbol;
}

}  // namespace

ir::Dim int_dim(int64_t v) {
  return v >= 0 ? ir::Dim::of(v) : ir::Dim::sym(std::to_string(v));
}

std::optional<int64_t> dim_int(const ir::Dim& d) {
  if (d.known()) return d.value;
  if (d.symbol.size() >= 2 && d.symbol[0] == '-' &&
      std::all_of(d.symbol.begin() + 1, d.symbol.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    try {
      return std::stoll(d.symbol);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

ir::Dim dim_mul(const ir::Dim& a, const ir::Dim& b) {
  auto ia = dim_int(a), ib = dim_int(b);
  if (ia && ib) return int_dim(*ia * *ib);
  if ((a.known() && a.value == 0) || (b.known() && b.value == 0)) return ir::Dim::of(0);
  Product pa = factor(a), pb = factor(b);
  if (!pa.valid || !pb.valid) return ir::Dim{};
  Product r;
  r.coefficient = pa.coefficient * pb.coefficient;
  r.atoms = pa.atoms;
  r.atoms.insert(r.atoms.end(), pb.atoms.begin(), pb.atoms.end());
  std::sort(r.atoms.begin(), r.atoms.end());
  return from_product(r);
}

ir::Dim dim_add(const ir::Dim& a, const ir::Dim& b) {
  auto ia = dim_int(a), ib = dim_int(b);
  if (ia && ib) return int_dim(*ia + *ib);
  if (a.known() && a.value == 0) return b;
  if (b.known() && b.value == 0) return a;
  if ((!a.known() && a.symbol.empty()) || (!b.known() && b.symbol.empty())) return ir::Dim{};
  return ir::Dim::sym("(" + atom_text(a) + "+" + atom_text(b) + ")");
}

ir::Dim dim_sub(const ir::Dim& a, const ir::Dim& b) {
  auto ia = dim_int(a), ib = dim_int(b);
  if (ia && ib) return int_dim(*ia - *ib);
  if (b.known() && b.value == 0) return a;
  if (same_dim(a, b)) return ir::Dim::of(0);
  if ((!a.known() && a.symbol.empty()) || (!b.known() && b.symbol.empty())) return ir::Dim{};
  return ir::Dim::sym("(" + atom_text(a) + "-" + atom_text(b) + ")");
}

ir::Dim dim_div(const ir::Dim& a, const ir::Dim& b) {
  auto ia = dim_int(a), ib = dim_int(b);
  if (ia && ib) {
    if (*ib == 0) return ir::Dim{};
    int64_t q = *ia / *ib;
    if ((*ia % *ib != 0) && ((*ia < 0) != (*ib < 0))) --q;
    return int_dim(q);
  }
  if (b.known() && b.value == 1) return a;
  if (same_dim(a, b)) return ir::Dim::of(1);
  Product pa = factor(a), pb = factor(b);
  if (!pa.valid || !pb.valid || pb.coefficient == 0 || pa.coefficient % pb.coefficient != 0) {
    return ir::Dim{};
  }
  Product r;
  r.coefficient = pa.coefficient / pb.coefficient;
  r.atoms = pa.atoms;
  for (const auto& atom : pb.atoms) {
    auto it = std::find(r.atoms.begin(), r.atoms.end(), atom);
    if (it == r.atoms.end()) return ir::Dim{};
    r.atoms.erase(it);
  }
  return from_product(r);
}

ir::Dim dim_product(const ir::Shape& s) {
  ir::Dim p = ir::Dim::of(1);
  for (const auto& d : s) p = dim_mul(p, d);
  return p;
}

bool same_dim(const ir::Dim& a, const ir::Dim& b) {
  auto ia = dim_int(a), ib = dim_int(b);
  if (ia || ib) return ia && ib && *ia == *ib;
  return !a.symbol.empty() && a.symbol == b.symbol;
}

ir::Dim broadcast_dim(const ir::Dim& a, const ir::Dim& b) {
  if (a.known() && a.value == 1) return b;
  if (b.known() && b.value == 1) return a;
  if (a.known() && b.known()) {
    check(a.value == b.value, "dims " + std::to_string(a.value) + " and " +
                                  std::to_string(b.value) + " do not broadcast");
    return a;
  }
  if (same_dim(a, b)) return a;
  // A known dim other than 1 decides: the symbol must be that value (or 1).
  if (a.known()) return a;
  if (b.known()) return b;
  return ir::Dim{};
}

ir::Shape broadcast_shapes(const ir::Shape& a, const ir::Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  ir::Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const ir::Dim one = ir::Dim::of(1);
    const ir::Dim& da = i + a.size() >= rank ? a[i + a.size() - rank] : one;
    const ir::Dim& db = i + b.size() >= rank ? b[i + b.size() - rank] : one;
    out[i] = broadcast_dim(da, db);
  }
  return out;
}

std::optional<std::vector<int64_t>> known_values(const ir::Shape& s) {
  std::vector<int64_t> v;
  v.reserve(s.size());
  for (const auto& d : s) {
    auto i = dim_int(d);
    if (!i) return std::nullopt;
    v.push_back(*i);
  }
  return v;
}

ir::Shape shape_of_dims(const std::vector<int64_t>& dims) {
  ir::Shape s;
  s.reserve(dims.size());
  for (int64_t d : dims) s.push_back(int_dim(d));
  return s;
}

bool fully_known(const ir::Shape& s) {
  return std::all_of(s.begin(), s.end(), [](const ir::Dim& d) { return d.known(); });
}

}  // namespace kpt::analysis
