#pragma once
// The engine file (.kpt) container: a fixed 4096-byte header with a section table, then
// sections at 4096-byte offsets, each with an XXH3-64 checksum. What the sections hold is the
// session's business (runtime/engine_session.cpp); this file only writes, maps and verifies
// them. Layout and rules: docs/ENGINE_FILE.md.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kpt::engine {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 4096;
inline constexpr size_t kSectionAlign = 4096;
// Every weight and packed blob starts at a multiple of this within its section, so tensors
// over the mapping are zero-copy views (kpt::Tensor storage is 64-byte aligned).
inline constexpr size_t kBlobAlign = 64;

enum class SectionKind : uint32_t {
  Metadata = 1,  // JSON: source, options, passes, precision decisions, target, tool version
  Graph = 2,     // ONNX ModelProto bytes; initializers are external data in Weights
  Weights = 3,   // the optimized graph's initializers, fp32 (as the graph holds them)
  Packed = 4,    // weights prepacked by the CPU kernels, in oneDNN's layouts
  Kernels = 5,   // JSON: per-node precision and the index of the Packed blobs
};
const char* section_name(SectionKind kind);

struct Section {
  SectionKind kind = SectionKind::Metadata;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t checksum = 0;  // XXH3-64 of the section's bytes
};

// Whether the file starts with the engine magic (not judged by the extension).
bool is_engine_file(const std::string& path);

// Streams sections to `path` (through `path`.tmp, renamed at finish, so a failed write leaves
// no half file). Sections are written one after another; blobs are appended, never held.
class EngineWriter {
 public:
  explicit EngineWriter(const std::string& path);
  ~EngineWriter();
  EngineWriter(const EngineWriter&) = delete;
  EngineWriter& operator=(const EngineWriter&) = delete;

  void begin_section(SectionKind kind);
  // Appends to the open section after padding to `align`; returns the offset within it.
  uint64_t append(const void* data, size_t size, size_t align = 1);
  void end_section();
  // Writes the header and section table and moves the file into place.
  void finish();

 private:
  void write_raw(const void* data, size_t size);
  void pad_to(uint64_t file_offset);

  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  uint64_t position_ = 0;
  bool in_section_ = false;
  Section current_;
  std::vector<Section> sections_;
  struct HashState;
  std::unique_ptr<HashState> hash_;
};

struct OpenOptions {
  // false skips the checksums of Weights and Packed (trusted fast loads); the header and the
  // other sections are always verified.
  bool verify_weights = true;
};

// A mapped, verified engine file. Section views stay valid while `mapping` lives.
struct EngineFile {
  std::string path;
  uint32_t format_version = 0;
  std::string kpt_version;
  std::vector<Section> sections;
  std::shared_ptr<void> mapping;
  const uint8_t* base = nullptr;
  size_t size = 0;

  bool has(SectionKind kind) const;
  // The section's bytes; fails naming the section when the file has none.
  std::string_view section(SectionKind kind) const;
  // Gives the section's pages back (clean file pages, re-read on the next touch): the fp32
  // weights were read only to verify them.
  void release_pages(SectionKind kind) const;
};

// Maps and verifies an engine file: magic, format version, header checksum, size against the
// header's (a truncated file fails here, before anything beyond its end is mapped), section
// bounds, section checksums. Every failure names the file and what was expected.
EngineFile open_engine(const std::string& path, const OpenOptions& options = {});

// XXH3-128 of a file's bytes, as 32 hex digits (the engine's record of its source model).
std::string hash_file(const std::string& path);

}  // namespace kpt::engine
