#pragma once
// Shape buckets at run time (see SessionOptions::buckets): which symbols may be padded, which
// bucket a run's inputs fall into, and the padding of inputs and slicing of outputs that lets a
// run of a shorter length use the plan of the bucket above it.
//
// Padding is sound only where padded positions cannot reach the real ones: rows of the batch
// dim are independent, and positions that a mask input marks 0 are not attended to. Padded
// values are 0 (ids, features and mask alike), and every output is sliced back along the axes
// that carry a padded symbol, so a symbol is padded only when every output's axes are known.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kpt/session.hpp"

namespace kpt::runtime {

// How one run meets the buckets.
struct BucketRoute {
  enum class Kind { Exact, Bucket, Padded };
  Kind kind = Kind::Exact;
  // Every input symbol's size in this run, as given and as run (after padding).
  std::map<std::string, int64_t> given, run;
  // The plan is a bucket's for good: every input symbol has buckets and its size is one.
  bool pinned = false;
};

class BucketRouter {
 public:
  // `outputs`: the model's outputs with the symbols of their dims (declared, or inferred where
  // the declaration leaves a dim unnamed). Fails when a declared symbol is not an input
  // symbol, naming the model's symbols.
  BucketRouter(ShapeBuckets buckets, const std::vector<IoInfo>& inputs,
               const std::vector<IoInfo>& outputs);

  BucketRoute route(const std::map<std::string, Value>& inputs) const;
  // The inputs padded with zeros to route.run along the axes of padded symbols.
  std::map<std::string, Value> pad(const std::map<std::string, Value>& inputs,
                                   const BucketRoute& route) const;
  // The outputs of a padded run sliced back to route.given.
  void slice(std::vector<Value>& outputs, const BucketRoute& route) const;

  // Every combination of bucket sizes, with `other_sizes` for input symbols without buckets;
  // fails naming a symbol that has neither.
  std::vector<std::map<std::string, int64_t>> combinations(
      const std::map<std::string, int64_t>& other_sizes) const;
  const std::vector<IoInfo>& inputs() const { return inputs_; }

  bool paddable(const std::string& symbol) const { return paddable_.count(symbol) != 0; }
  // One line per declared symbol: its sizes, and whether it is padded and why (not).
  std::string report() const;

 private:
  ShapeBuckets buckets_;
  std::vector<IoInfo> inputs_, outputs_;
  std::vector<std::string> symbols_;                 // of the inputs, in order of first appearance
  std::map<std::string, std::string> paddable_;      // symbol -> why
  std::map<std::string, std::string> not_paddable_;  // symbol -> why not
};

// The size of each named dynamic dim in `inputs` (tensors checked against their declarations
// elsewhere); nullopt when two inputs disagree on a symbol.
std::optional<std::map<std::string, int64_t>> symbol_sizes(
    const std::vector<IoInfo>& infos, const std::map<std::string, Value>& inputs);
// Concrete dims of every tensor input, its symbols replaced by `sizes`; fails naming an input
// dim that is dynamic and unnamed or whose symbol has no size.
std::map<std::string, Dims> input_dims_for(const std::vector<IoInfo>& infos,
                                           const std::map<std::string, int64_t>& sizes);

// Copies the leading `block` of `src` (dims src_dims) into the leading corner of `dst` (dims
// dst_dims); both row-major with elements of `elem` bytes, block within both.
void copy_block(const void* src, const Dims& src_dims, void* dst, const Dims& dst_dims,
                const Dims& block, size_t elem);

}  // namespace kpt::runtime
