// Einsum: general Einstein summation (explicit or implicit output, repeated labels for
// diagonals, ellipsis with numpy broadcasting), computed by iterating over every label.
#include <algorithm>
#include <map>
#include <type_traits>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

// Letters map to 0..51 in ASCII order (upper case first, as numpy sorts implicit outputs);
// ellipsis dimensions map to 52 + position within the broadcast ellipsis.
constexpr int kEllipsisBase = 52;

int letter_label(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
  return -1;
}

struct Term {
  std::vector<int> letters_before;  // labels before "..." (or all of them)
  std::vector<int> letters_after;   // labels after "..."
  bool has_ellipsis = false;
};

Term parse_term(KernelContext& ctx, const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      ctx.check(!t.has_ellipsis && s.compare(i, 3, "...") == 0,
                "malformed ellipsis in einsum term '" + s + "'");
      t.has_ellipsis = true;
      i += 2;
      continue;
    }
    const int l = letter_label(s[i]);
    ctx.check(l >= 0, "invalid character '" + std::string(1, s[i]) + "' in einsum term '" + s +
                          "' (expected letters, '...', ',' and '->')");
    (t.has_ellipsis ? t.letters_after : t.letters_before).push_back(l);
  }
  return t;
}

// The full label list of a term whose ellipsis covers `ell` dims of `max_ell` broadcast ones.
std::vector<int> expand(const Term& t, int64_t ell, int64_t max_ell) {
  std::vector<int> labels = t.letters_before;
  for (int64_t i = max_ell - ell; i < max_ell; ++i)
    labels.push_back(kEllipsisBase + static_cast<int>(i));
  labels.insert(labels.end(), t.letters_after.begin(), t.letters_after.end());
  return labels;
}

void einsum(KernelContext& ctx) {
  std::string eq;
  for (char ch : ctx.attr_string("equation", "")) {
    if (ch != ' ') eq.push_back(ch);
  }
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> term_strs;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    term_strs.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  ctx.check(term_strs.size() == ctx.num_inputs(),
            "equation '" + eq + "' has " + std::to_string(term_strs.size()) + " terms but " +
                std::to_string(ctx.num_inputs()) + " inputs were given");

  std::vector<Tensor> inputs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) inputs.push_back(to_compute(ctx.input(i)));
  const DType dtype = inputs[0].dtype();
  for (const Tensor& t : inputs)
    ctx.check(t.dtype() == dtype, [&] {
      return "inputs have different element types: " + t.describe() + " vs " + inputs[0].describe();
    });

  std::vector<Term> terms;
  std::vector<int64_t> ell(inputs.size(), 0);
  int64_t max_ell = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    terms.push_back(parse_term(ctx, term_strs[i]));
    const int64_t letters =
        static_cast<int64_t>(terms[i].letters_before.size() + terms[i].letters_after.size());
    const int64_t rank = static_cast<int64_t>(inputs[i].rank());
    if (terms[i].has_ellipsis) {
      ctx.check(rank >= letters, [&] {
        return "term '" + term_strs[i] + "' needs rank >= " + std::to_string(letters) + ", got " +
               inputs[i].describe();
      });
      ell[i] = rank - letters;
    } else {
      ctx.check(rank == letters, [&] {
        return "term '" + term_strs[i] + "' needs rank " + std::to_string(letters) + ", got " +
               inputs[i].describe();
      });
    }
    max_ell = std::max(max_ell, ell[i]);
  }

  // Label sizes (1 broadcasts) and each input's stride per label (summed for diagonals).
  std::map<int, int64_t> size;
  std::map<int, int> count;
  std::vector<std::map<int, int64_t>> stride(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int> labels = expand(terms[i], ell[i], max_ell);
    const std::vector<int64_t> st = strides_of(inputs[i].dims());
    std::map<int, int64_t> own_size;
    for (size_t d = 0; d < labels.size(); ++d) {
      const int l = labels[d];
      const int64_t n = inputs[i].dims()[d];
      if (own_size.count(l)) {
        ctx.check(own_size[l] == n, [&] {
          return "repeated label in term '" + term_strs[i] +
                 "' covers dims of different sizes in " + inputs[i].describe();
        });
      } else {
        own_size[l] = n;
      }
      ++count[l];  // implicit output keeps labels seen exactly once, counting repeats
      if (!size.count(l) || size[l] == 1) {
        size[l] = n;
      } else {
        ctx.check(n == size[l] || n == 1, "label sizes disagree between inputs for equation '" +
                                              eq + "' (" + std::to_string(n) + " vs " +
                                              std::to_string(size[l]) + ")");
      }
      if (n != 1) stride[i][l] += st[d];
    }
  }

  std::vector<int> out_labels;
  if (arrow != std::string::npos) {
    const Term out_term = parse_term(ctx, eq.substr(arrow + 2));
    out_labels = expand(out_term, out_term.has_ellipsis ? max_ell : 0, max_ell);
    for (size_t a = 0; a < out_labels.size(); ++a) {
      ctx.check(size.count(out_labels[a]) != 0,
                "output label in '" + eq + "' does not appear in any input");
      ctx.check(std::count(out_labels.begin(), out_labels.end(), out_labels[a]) == 1,
                "output label repeated in '" + eq + "'");
    }
    if (!out_term.has_ellipsis)
      for (int64_t e = 0; e < max_ell; ++e)
        ctx.check(size[kEllipsisBase + static_cast<int>(e)] == 1,
                  "equation '" + eq + "' drops broadcast (ellipsis) dims that are not 1");
  } else {
    for (int64_t e = 0; e < max_ell; ++e) out_labels.push_back(kEllipsisBase + static_cast<int>(e));
    for (const auto& [l, c] : count)
      if (l < kEllipsisBase && c == 1) out_labels.push_back(l);
  }
  std::vector<int> sum_labels;
  for (const auto& [l, n] : size)
    if (std::find(out_labels.begin(), out_labels.end(), l) == out_labels.end())
      sum_labels.push_back(l);

  Dims out_dims;
  for (int l : out_labels) out_dims.push_back(size[l]);
  Dims sum_dims;
  for (int l : sum_labels) sum_dims.push_back(size[l]);
  const int64_t out_n = element_count(out_dims);
  const int64_t sum_n = element_count(sum_dims);
  if (sum_n > 0 && out_n > (int64_t{1} << 36) / sum_n)
    ctx.unsupported("einsum '" + eq + "' needs more than 2^36 multiply-adds");

  // Per input: stride of each output label and each summed label.
  auto strides_for = [&](const std::vector<int>& labels) {
    std::vector<std::vector<int64_t>> s(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      for (int l : labels) s[i].push_back(stride[i].count(l) ? stride[i].at(l) : 0);
    return s;
  };
  const auto out_strides = strides_for(out_labels);
  const auto sum_strides = strides_for(sum_labels);
  // Odometer over `dims` that keeps each input's offset current.
  auto advance = [&](std::vector<int64_t>& idx, const Dims& dims,
                     const std::vector<std::vector<int64_t>>& st, std::vector<int64_t>& off) {
    for (size_t d = dims.size(); d-- > 0;) {
      for (size_t i = 0; i < off.size(); ++i) off[i] += st[i][d];
      if (++idx[d] < dims[d]) return;
      for (size_t i = 0; i < off.size(); ++i) off[i] -= st[i][d] * dims[d];
      idx[d] = 0;
    }
  };

  Tensor out(dtype, out_dims);
  dispatch(dtype, "Einsum", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      ctx.unsupported("Einsum does not support bool inputs");
    } else {
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double,
                                     std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
      std::vector<const T*> data;
      for (const Tensor& t : inputs) data.push_back(t.data<T>());
      T* po = out.data<T>();
      std::vector<int64_t> out_idx(out_dims.size(), 0), out_off(inputs.size(), 0);
      for (int64_t o = 0; o < out_n; ++o) {
        Acc acc = 0;
        std::vector<int64_t> sum_idx(sum_dims.size(), 0), off = out_off;
        for (int64_t s = 0; s < sum_n; ++s) {
          Acc p = 1;
          for (size_t i = 0; i < inputs.size(); ++i) p *= static_cast<Acc>(data[i][off[i]]);
          acc += p;
          advance(sum_idx, sum_dims, sum_strides, off);
        }
        advance(out_idx, out_dims, out_strides, out_off);
        po[o] = static_cast<T>(acc);
      }
    }
  });
  ctx.set_output(0, from_compute(out, ctx.input(0).dtype()));
}

}  // namespace

KPT_REGISTER_OP("", "Einsum", 1, einsum);

}  // namespace kpt::ops
