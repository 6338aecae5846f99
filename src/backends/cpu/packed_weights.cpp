#include "backends/cpu/packed_weights.hpp"

#include <xxhash.h>

#include "backends/cpu/dnnl_context.hpp"

namespace kpt::cpu {

std::optional<PackedBytes> PackedWeights::find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  ++reused_;
  return it->second;
}

void PackedWeights::store(const std::string& key, PackedBytes bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ++packed_;
  entries_[key] = std::move(bytes);
}

void PackedWeights::add_prepacked(const std::string& key, PackedBytes bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_[key] = std::move(bytes);
}

std::map<std::string, PackedBytes> PackedWeights::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_;
}

int PackedWeights::reused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reused_;
}

int PackedWeights::packed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return packed_;
}

namespace {

std::string dims_text(int n, const dnnl_dims_t d) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

// Everything that decides where each element lies, spelled out (the C struct has padding, so
// its raw bytes are not compared).
std::string layout_text(const dnnl::memory::desc& layout) {
  const dnnl_memory_desc_t& m = layout.data;
  std::string s = "dt" + std::to_string(static_cast<int>(m.data_type)) + ":" +
                  dims_text(m.ndims, m.dims) + ":pad" + dims_text(m.ndims, m.padded_dims) + ":off" +
                  std::to_string(m.offset0) + ":fmt" +
                  std::to_string(static_cast<int>(m.format_kind));
  if (m.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = m.format_desc.blocking;
    s += ":s" + dims_text(m.ndims, b.strides) + ":b" + dims_text(b.inner_nblks, b.inner_blks) +
         ":i" + dims_text(b.inner_nblks, b.inner_idxs);
  } else {
    // Opaque formats (Winograd): oneDNN fills the descriptor itself, so its bytes are stable;
    // were they not, the key would only miss and the kernel pack afresh.
    s += ":h" + std::to_string(XXH3_64bits(&m.format_desc, sizeof m.format_desc));
  }
  s += ":x" + std::to_string(m.extra.flags) + "." + std::to_string(m.extra.compensation_mask) +
       "." + std::to_string(m.extra.asymm_compensation_mask) + ":n" +
       std::to_string(layout.get_size());
  return s;
}

}  // namespace

std::string packed_key_prefix(const ir::Node& node, Precision precision) {
  return (node.outputs.empty() ? node.name : node.outputs[0]) + "|" + precision_name(precision) +
         "|";
}

std::string packed_key(const std::string& prefix, const std::string& role,
                       const dnnl::memory::desc& layout) {
  return prefix + role + "|" + layout_text(layout);
}

std::optional<dnnl::memory> memory_over(const PackedBytes& bytes,
                                        const dnnl::memory::desc& layout) {
  if (!bytes.data || bytes.size != layout.get_size()) return std::nullopt;
  // oneDNN only reads weights; the mapping is read-only.
  return dnnl::memory(layout, dnnl_util::engine(), const_cast<void*>(bytes.data));
}

PackedBytes bytes_of(const dnnl::memory& m) {
  auto* data = m.get_data_handle();
  return PackedBytes{data, m.get_desc().get_size(),
                     std::shared_ptr<const void>(data, [keep = m](const void*) {})};
}

}  // namespace kpt::cpu
