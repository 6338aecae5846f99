#include "engine/engine_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "kpt/error.hpp"

namespace kpt::engine {

namespace {

// Header layout (little-endian): magic[16], u32 format version, u32 section count,
// kpt version[24] (NUL-padded), u64 header checksum (XXH3-64 of the 4096 header bytes with
// this field zero), u64 file size, then the section table at byte 64: 32 bytes per section
// (u32 kind, u32 reserved, u64 offset, u64 size, u64 checksum).
constexpr char kMagic[16] = {'K', 'P', 'T', 'E', 'N', 'G', 'I', 'N', 'E', '\0'};
constexpr size_t kVersionAt = 16, kCountAt = 20, kToolAt = 24, kToolBytes = 24;
constexpr size_t kChecksumAt = 48, kFileSizeAt = 56, kTableAt = 64, kEntryBytes = 32;
constexpr size_t kMaxSections = (kHeaderBytes - kTableAt) / kEntryBytes;

template <typename T>
void put(uint8_t* at, T v) {
  std::memcpy(at, &v, sizeof v);
}
template <typename T>
T get(const uint8_t* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

uint64_t header_checksum(const uint8_t* header) {
  uint8_t copy[kHeaderBytes];
  std::memcpy(copy, header, kHeaderBytes);
  put<uint64_t>(copy + kChecksumAt, 0);
  return XXH3_64bits(copy, kHeaderBytes);
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* tool_version() {
  return KPT_VERSION_STRING;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

const char* section_name(SectionKind kind) {
  switch (kind) {
    case SectionKind::Metadata:
      return "metadata";
    case SectionKind::Graph:
      return "graph";
    case SectionKind::Weights:
      return "weights";
    case SectionKind::Packed:
      return "packed weights";
    case SectionKind::Kernels:
      return "kernel plan";
  }
  return "unknown";
}

bool is_engine_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return false;
  char magic[sizeof kMagic];
  return ::pread(f.fd, magic, sizeof magic, 0) == static_cast<ssize_t>(sizeof magic) &&
         std::memcmp(magic, kMagic, sizeof magic) == 0;
}

// ---------------------------------------------------------------------------------------------
// Writing

struct EngineWriter::HashState {
  XXH3_state_t* state = XXH3_createState();
  ~HashState() { XXH3_freeState(state); }
};

EngineWriter::EngineWriter(const std::string& path)
    : path_(path), tmp_path_(path + ".tmp"), hash_(std::make_unique<HashState>()) {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  check(file_ != nullptr,
        "cannot write engine file '" + tmp_path_ + "': " + std::string(std::strerror(errno)));
  const std::vector<uint8_t> placeholder(kHeaderBytes, 0);
  write_raw(placeholder.data(), placeholder.size());
}

EngineWriter::~EngineWriter() {
  if (file_) {  // not finished: an error on the way
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
  }
}

void EngineWriter::write_raw(const void* data, size_t size) {
  if (size == 0) return;
  check(std::fwrite(data, 1, size, file_) == size,
        "writing engine file '" + tmp_path_ + "' failed: " + std::string(std::strerror(errno)));
  position_ += size;
}

void EngineWriter::pad_to(uint64_t file_offset) {
  static const uint8_t zeros[kSectionAlign] = {};
  while (position_ < file_offset) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(file_offset - position_, sizeof zeros));
    if (in_section_) XXH3_64bits_update(hash_->state, zeros, n);
    write_raw(zeros, n);
  }
}

void EngineWriter::begin_section(SectionKind kind) {
  check(!in_section_, "engine writer: a section is already open");
  check(sections_.size() < kMaxSections, "engine writer: too many sections");
  pad_to((position_ + kSectionAlign - 1) / kSectionAlign * kSectionAlign);
  current_ = Section{kind, position_, 0, 0};
  XXH3_64bits_reset(hash_->state);
  in_section_ = true;
}

uint64_t EngineWriter::append(const void* data, size_t size, size_t align) {
  check(in_section_, "engine writer: append outside a section");
  const uint64_t rel = position_ - current_.offset;
  pad_to(current_.offset + (rel + align - 1) / align * align);
  const uint64_t at = position_ - current_.offset;
  XXH3_64bits_update(hash_->state, data, size);
  write_raw(data, size);
  return at;
}

void EngineWriter::end_section() {
  check(in_section_, "engine writer: no section is open");
  current_.size = position_ - current_.offset;
  current_.checksum = XXH3_64bits_digest(hash_->state);
  sections_.push_back(current_);
  in_section_ = false;
}

void EngineWriter::finish() {
  check(!in_section_, "engine writer: a section is still open");
  uint8_t header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof kMagic);
  put<uint32_t>(header + kVersionAt, kFormatVersion);
  put<uint32_t>(header + kCountAt, static_cast<uint32_t>(sections_.size()));
  std::strncpy(reinterpret_cast<char*>(header + kToolAt), tool_version(), kToolBytes - 1);
  put<uint64_t>(header + kFileSizeAt, position_);
  for (size_t i = 0; i < sections_.size(); ++i) {
    uint8_t* e = header + kTableAt + i * kEntryBytes;
    put<uint32_t>(e, static_cast<uint32_t>(sections_[i].kind));
    put<uint64_t>(e + 8, sections_[i].offset);
    put<uint64_t>(e + 16, sections_[i].size);
    put<uint64_t>(e + 24, sections_[i].checksum);
  }
  put<uint64_t>(header + kChecksumAt, header_checksum(header));
  const bool ok = std::fseek(file_, 0, SEEK_SET) == 0 &&
                  std::fwrite(header, 1, kHeaderBytes, file_) == kHeaderBytes &&
                  std::fflush(file_) == 0;
  const int close_status = std::fclose(file_);
  file_ = nullptr;
  if (!ok || close_status != 0) {
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
    fail("writing engine file '" + tmp_path_ + "' failed: " + std::string(std::strerror(errno)));
  }
  std::filesystem::rename(tmp_path_, path_);
}

// ---------------------------------------------------------------------------------------------
// Reading

bool EngineFile::has(SectionKind kind) const {
  for (const auto& s : sections)
    if (s.kind == kind) return true;
  return false;
}

std::string_view EngineFile::section(SectionKind kind) const {
  for (const auto& s : sections) {
    if (s.kind == kind)
      return {reinterpret_cast<const char*>(base + s.offset), static_cast<size_t>(s.size)};
  }
  fail(path + ": engine file has no " + section_name(kind) + " section");
}

void EngineFile::release_pages(SectionKind kind) const {
  for (const auto& s : sections) {
    if (s.kind != kind || s.size == 0) continue;
    // Sections start page-aligned; the tail page may be shared with the next section.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t len = static_cast<size_t>(s.size) / page * page;
    if (len) ::madvise(const_cast<uint8_t*>(base + s.offset), len, MADV_DONTNEED);
  }
}

EngineFile open_engine(const std::string& path, const OpenOptions& options) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  check(f.fd >= 0, "cannot open engine file '" + path + "': " + std::string(std::strerror(errno)));
  struct stat st {};
  check(::fstat(f.fd, &st) == 0, "cannot stat engine file '" + path + "'");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  uint8_t header[kHeaderBytes];
  const ssize_t got = ::pread(f.fd, header, kHeaderBytes, 0);
  check(
      got >= static_cast<ssize_t>(sizeof kMagic) && std::memcmp(header, kMagic, sizeof kMagic) == 0,
      path + ": not a kpt engine file (no KPTENGINE magic at its start)");
  check(got == static_cast<ssize_t>(kHeaderBytes),
        path + ": engine file truncated: " + std::to_string(file_size) +
            " bytes, shorter than its " + std::to_string(kHeaderBytes) + "-byte header");

  EngineFile e;
  e.path = path;
  e.format_version = get<uint32_t>(header + kVersionAt);
  check(e.format_version == kFormatVersion,
        path + ": engine format version " + std::to_string(e.format_version) +
            ", this kpt reads version " + std::to_string(kFormatVersion) +
            ": re-run kpt optimize on the source model");
  check(get<uint64_t>(header + kChecksumAt) == header_checksum(header),
        path + ": engine header checksum mismatch (the file is corrupted): re-run kpt optimize");
  const char* tool = reinterpret_cast<const char*>(header + kToolAt);
  e.kpt_version.assign(tool, strnlen(tool, kToolBytes));
  const auto declared = get<uint64_t>(header + kFileSizeAt);
  check(file_size == declared, path + ": engine file truncated or extended: the header says " +
                                   std::to_string(declared) + " bytes, the file has " +
                                   std::to_string(file_size));
  const auto count = get<uint32_t>(header + kCountAt);
  check(count <= kMaxSections, path + ": engine header lists " + std::to_string(count) +
                                   " sections, at most " + std::to_string(kMaxSections) + " fit");
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* t = header + kTableAt + i * kEntryBytes;
    Section s{static_cast<SectionKind>(get<uint32_t>(t)), get<uint64_t>(t + 8),
              get<uint64_t>(t + 16), get<uint64_t>(t + 24)};
    check(s.offset >= kHeaderBytes && s.offset <= file_size && s.size <= file_size - s.offset,
          path + ": engine section " + std::to_string(i) + " (" + section_name(s.kind) +
              ") spans bytes " + std::to_string(s.offset) + ".." +
              std::to_string(s.offset + s.size) + ", beyond the file's " +
              std::to_string(file_size) + " bytes");
    e.sections.push_back(s);
  }

  void* base = ::mmap(nullptr, static_cast<size_t>(file_size), PROT_READ, MAP_PRIVATE, f.fd, 0);
  check(base != MAP_FAILED,
        "cannot map engine file '" + path + "': " + std::string(std::strerror(errno)));
  e.size = static_cast<size_t>(file_size);
  e.base = static_cast<const uint8_t*>(base);
  e.mapping = std::shared_ptr<void>(base, [size = e.size](void* p) { ::munmap(p, size); });

  for (const auto& s : e.sections) {
    const bool weights = s.kind == SectionKind::Weights || s.kind == SectionKind::Packed;
    if (weights && !options.verify_weights) continue;
    const uint64_t sum = XXH3_64bits(e.base + s.offset, static_cast<size_t>(s.size));
    check(sum == s.checksum, path + ": engine " + section_name(s.kind) +
                                 " section checksum mismatch (expected " + hex64(s.checksum) +
                                 ", computed " + hex64(sum) +
                                 "): the file is corrupted; re-run kpt optimize");
  }
  // The fp32 weights were read only to verify them; packed kernels never read them again.
  if (options.verify_weights) e.release_pages(SectionKind::Weights);
  return e;
}

std::string hash_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  check(f.fd >= 0, "cannot open '" + path + "' to hash it");
  XXH3_state_t* state = XXH3_createState();
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> keep(state, XXH3_freeState);
  XXH3_128bits_reset(state);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(f.fd, buf.data(), buf.size());
    check(n >= 0, "reading '" + path + "' failed: " + std::string(std::strerror(errno)));
    if (n == 0) break;
    XXH3_128bits_update(state, buf.data(), static_cast<size_t>(n));
  }
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  return hex64(h.high64) + hex64(h.low64);
}

}  // namespace kpt::engine
