// TfIdfVectorizer: counts the pool's n-grams (optionally with skips between tokens) in each
// row of a [C] or [N, C] input, then weights the counts (TF, IDF or TFIDF). The pool is held
// in a trie so that one walk from each start position finds every n-gram length at once.
#include <algorithm>
#include <map>
#include <memory>

#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

struct TrieNode {
  int64_t id = 0;  // 1-based position of the n-gram ending here in the pool; 0: none
  std::map<std::string, std::unique_ptr<TrieNode>> next;
};

std::string token_key(const Tensor& x, int64_t i) {
  return x.dtype() == DType::String ? x.strings()[static_cast<size_t>(i)]
                                    : std::to_string(x.get_i64(i));
}

void tfidf_vectorizer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const auto& node = ctx.node();
  const int64_t min_n = ctx.attr_int("min_gram_length", 0);
  const int64_t max_n = ctx.attr_int("max_gram_length", 0);
  const int64_t max_skip = ctx.attr_int("max_skip_count", 0);
  const std::string mode = ctx.attr_string("mode", "");
  ctx.check(min_n >= 1 && max_n >= min_n, "need 1 <= min_gram_length <= max_gram_length, got " +
                                              std::to_string(min_n) + ", " + std::to_string(max_n));
  ctx.check(max_skip >= 0, "max_skip_count must be non-negative");
  ctx.check(mode == "TF" || mode == "IDF" || mode == "TFIDF",
            "mode must be TF, IDF or TFIDF, got '" + mode + "'");
  const std::vector<int64_t> counts = ctx.attr_ints("ngram_counts");
  const std::vector<int64_t> indexes = ctx.attr_ints("ngram_indexes");
  const std::vector<float> weights = ctx.attr_floats("weights");
  const bool string_pool = node.has_attr("pool_strings");
  std::vector<std::string> pool;
  if (string_pool) {
    pool = node.attr_strings("pool_strings");
    ctx.check(x.dtype() == DType::String,
              [&] { return "a string pool needs string input, got " + x.describe(); });
  } else {
    ctx.check(node.has_attr("pool_int64s"), "one of pool_strings or pool_int64s is required");
    for (auto v : ctx.attr_ints("pool_int64s")) pool.push_back(std::to_string(v));
    ctx.check(x.dtype() == DType::I32 || x.dtype() == DType::I64,
              [&] { return "an integer pool needs int32 or int64 input, got " + x.describe(); });
  }

  TrieNode root;
  int64_t ngram_id = 0;
  const int64_t pool_size = static_cast<int64_t>(pool.size());
  for (size_t g = 0; g < counts.size(); ++g) {
    const int64_t n = static_cast<int64_t>(g) + 1;
    const int64_t begin = counts[g];
    const int64_t end = g + 1 < counts.size() ? counts[g + 1] : pool_size;
    ctx.check(begin >= 0 && begin <= end && end <= pool_size && (end - begin) % n == 0,
              "ngram_counts does not describe the pool: entry " + std::to_string(g) + " spans [" +
                  std::to_string(begin) + ", " + std::to_string(end) + ")");
    for (int64_t at = begin; at < end; at += n) {
      TrieNode* cur = &root;
      for (int64_t k = 0; k < n; ++k) {
        auto& child = cur->next[pool[static_cast<size_t>(at + k)]];
        if (!child) child = std::make_unique<TrieNode>();
        cur = child.get();
      }
      cur->id = ++ngram_id;
    }
  }
  ctx.check(static_cast<int64_t>(indexes.size()) == ngram_id,
            "ngram_indexes has " + std::to_string(indexes.size()) + " entries but the pool has " +
                std::to_string(ngram_id) + " n-grams");
  int64_t out_size = 0;
  for (auto i : indexes) {
    ctx.check(i >= 0, "ngram_indexes must be non-negative");
    out_size = std::max(out_size, i + 1);
  }
  ctx.check(weights.empty() || static_cast<int64_t>(weights.size()) >= out_size,
            "weights has fewer entries than outputs");

  ctx.check(x.rank() == 1 || x.rank() == 2,
            [&] { return "input must be [C] or [N, C], got " + x.describe(); });
  const int64_t rows = x.rank() == 2 ? x.dims()[0] : 1;
  const int64_t cols = x.rank() == 2 ? x.dims()[1] : x.dims()[0];
  std::vector<double> freq(static_cast<size_t>(rows * out_size), 0.0);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t base = row * cols;
    int64_t start_n = min_n;
    for (int64_t skip = 1; skip <= max_skip + 1; ++skip) {
      for (int64_t s = 0; s < cols; ++s) {
        if (s + skip * (start_n - 1) >= cols) break;
        const TrieNode* cur = &root;
        int64_t n = 1;
        for (int64_t item = s; n <= max_n && item < cols; item += skip, ++n) {
          auto it = cur->next.find(token_key(x, base + item));
          if (it == cur->next.end()) break;
          cur = it->second.get();
          if (n >= start_n && cur->id != 0)
            freq[static_cast<size_t>(row * out_size + indexes[static_cast<size_t>(cur->id - 1)])] +=
                1;
        }
      }
      // Unigrams do not depend on the skip distance: count them once.
      if (start_n == 1) {
        ++start_n;
        if (start_n > max_n) break;
      }
    }
  }
  Tensor out(DType::F32, x.rank() == 2 ? Dims{rows, out_size} : Dims{out_size});
  float* po = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < out_size; ++i) {
      const double f = freq[static_cast<size_t>(r * out_size + i)];
      const double w = weights.empty() ? 1.0 : weights[static_cast<size_t>(i)];
      double v = f;
      if (mode == "IDF") v = f > 0 ? w : 0.0;
      if (mode == "TFIDF") v = f * w;
      po[r * out_size + i] = static_cast<float>(v);
    }
  }
  ctx.set_output(0, std::move(out));
}

}  // namespace

KPT_REGISTER_OP("", "TfIdfVectorizer", 1, tfidf_vectorizer);

}  // namespace kpt::ops
