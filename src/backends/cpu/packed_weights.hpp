#pragma once
// Weights the CPU kernels prepared (reordered into oneDNN's blocked layouts, converted to bf16,
// quantized to s8), by key. A kernel looks its key up at prepare; found, it runs on those bytes
// (an engine file's mapped section) and packs nothing; not found, it packs and stores what it
// made, which `kpt optimize -o` then writes into the engine file.
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>

#include "ir/graph.hpp"
#include "kpt/session.hpp"

namespace kpt::cpu {

struct PackedBytes {
  const void* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> keeper;  // keeps `data` alive (a kernel's buffer or the mapping)
};

class PackedWeights {
 public:
  // The bytes under `key`, or nothing. Counts a reuse when found.
  std::optional<PackedBytes> find(const std::string& key) const;
  // Records what a kernel packed (no copy: `bytes.keeper` shares the kernel's buffer).
  void store(const std::string& key, PackedBytes bytes);
  // Offers bytes packed elsewhere (an engine file's); not counted as packed here.
  void add_prepacked(const std::string& key, PackedBytes bytes);

  std::map<std::string, PackedBytes> entries() const;
  // Drops entries whose key `keep` rejects (auto precision's candidates that lost).
  template <typename Pred>
  void keep_only(Pred keep) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(entries_, [&](const auto& kv) { return !keep(kv.first); });
  }
  int reused() const;  // finds that hit
  int packed() const;  // stores: weights packed by a kernel in this process

 private:
  mutable std::mutex mu_;
  std::map<std::string, PackedBytes> entries_;
  mutable int reused_ = 0;
  int packed_ = 0;
};

// "<first output>|<precision>|": the prefix of every key a node's kernel uses at a precision.
std::string packed_key_prefix(const ir::Node& node, Precision precision);
// The key of one packed buffer: the node's prefix, what the buffer is ("gemm.weights"), and its
// oneDNN layout, so that a machine whose oneDNN picks another layout finds nothing and packs
// afresh instead of misreading bytes. Buffers without a layout (int8 scales) use prefix + role.
std::string packed_key(const std::string& prefix, const std::string& role,
                       const dnnl::memory::desc& layout);

// A oneDNN memory over `bytes` when they hold exactly `layout`'s size; nullopt otherwise.
std::optional<dnnl::memory> memory_over(const PackedBytes& bytes, const dnnl::memory::desc& layout);
// A keeper that shares a oneDNN memory's buffer.
PackedBytes bytes_of(const dnnl::memory& m);

}  // namespace kpt::cpu
