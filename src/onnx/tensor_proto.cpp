// TensorProto -> Tensor, external data included.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>

#include "kpt/error.hpp"
#include "onnx/import.hpp"
#include "onnx/onnx.pb.h"

namespace kpt::onnx_import {

namespace fs = std::filesystem;

namespace {

struct MappedFile {
  void* base = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (base && size) munmap(base, size);
  }
};

// Maps `location` below `model_dir`, refusing paths that leave it.
std::shared_ptr<MappedFile> map_external(const std::string& model_dir, const std::string& location,
                                         const std::string& tensor) {
  const std::string what = "external data of tensor '" + tensor + "'";
  check(!model_dir.empty(), what + ": a model loaded from bytes cannot use external data files");
  check(!location.empty(), what + ": the location is empty");
  // open() would stop at an embedded NUL and read a different file than the one checked.
  check(location.find('\0') == std::string::npos, what + ": the location contains a NUL byte");
  fs::path rel(location);
  check(!rel.is_absolute() && location[0] != '/' && location[0] != '\\',
        what + ": location '" + location +
            "' is an absolute path; expected a file name relative "
            "to the model's folder");
  for (const auto& part : rel) {
    check(part != "..",
          what + ": location '" + location + "' leaves the model's folder ('..' is not allowed)");
  }
  std::error_code ec;
  fs::path dir = fs::canonical(model_dir, ec);
  check(!ec, what + ": cannot resolve the model folder '" + model_dir + "'");
  fs::path full = fs::weakly_canonical(dir / rel, ec);
  check(!ec, what + ": cannot resolve '" + location + "'");
  auto [d_end, f_it] = std::mismatch(dir.begin(), dir.end(), full.begin(), full.end());
  check(d_end == dir.end(),
        what + ": location '" + location + "' resolves outside the model's folder");
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, what + ": cannot open '" + location + "' in '" + model_dir + "'");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(what + ": '" + location + "' is not a regular file");
  }
  auto m = std::make_shared<MappedFile>();
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void* p = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(what + ": cannot map '" + location + "'");
    }
    m->base = p;
  }
  ::close(fd);
  return m;
}

// Unpacks 4-bit or 2-bit elements (low bits first) into one byte each, sign-extending when
// the type is signed.
void unpack_subbyte(DType t, const uint8_t* src, size_t src_len, uint8_t* dst, int64_t n) {
  const int bits = packed_bits(t);
  const int per_byte = 8 / bits;
  check(src_len * static_cast<size_t>(per_byte) >= static_cast<size_t>(n),
        "packed data is shorter than the tensor's element count");
  const uint8_t mask = static_cast<uint8_t>((1u << bits) - 1);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t v = static_cast<uint8_t>((src[i / per_byte] >> ((i % per_byte) * bits)) & mask);
    if (is_signed_integer(t) && (v & (1u << (bits - 1)))) v = static_cast<uint8_t>(v | ~mask);
    dst[i] = v;
  }
}

// Bytes that `n` elements take in a file. Fails rather than wrapping: 2^61 doubles would
// otherwise "need" 0 bytes and pass the length checks below.
size_t file_bytes_for(DType t, int64_t n, const std::string& what) {
  const int bits = packed_bits(t);
  const auto un = static_cast<uint64_t>(n);
  check(un <= std::numeric_limits<uint64_t>::max() / 8 / dtype_size(t),
        what + ": " + std::to_string(n) + " elements of " + std::string(dtype_name(t)) +
            " are more bytes than can be addressed");
  if (bits < 8) return static_cast<size_t>((un * static_cast<uint64_t>(bits) + 7) / 8);
  return static_cast<size_t>(un * dtype_size(t));
}

// A decimal offset or length of external data; std::stoll would throw std::invalid_argument
// or std::out_of_range, which are not kpt::Error.
int64_t parse_external_int(const std::string& text, const std::string& key,
                           const std::string& what) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  check(ec == std::errc() && ptr == end && !text.empty(),
        what + ": external data " + key + " '" + text + "' is not a 64-bit integer");
  return v;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& model_dir,
                         const ExternalResolver* resolver) {
  const std::string name = p.name();
  const std::string what = "tensor '" + name + "'";
  check(p.has_data_type() && is_valid_dtype(p.data_type()),
        what + ": unknown or missing data_type " + std::to_string(p.data_type()));
  const DType t = static_cast<DType>(p.data_type());
  check(t != DType::Complex64 && t != DType::Complex128 && t != DType::Undefined,
        what + ": element type " + std::string(dtype_name(t)) + " is not supported");
  Dims dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims) check(d >= 0, what + ": negative dimension in " + dims_to_string(dims));
  int64_t n = 0;
  try {
    n = element_count(dims);
  } catch (const Error& e) {
    fail(what + ": " + e.what());
  }
  const size_t want = t == DType::String ? 0 : file_bytes_for(t, n, what);

  if (t == DType::String) {
    check(p.data_location() != onnx::TensorProto::EXTERNAL,
          what + ": external string data is not supported");
    check(p.string_data_size() == n, what + ": has " + std::to_string(p.string_data_size()) +
                                         " strings; its shape " + dims_to_string(dims) + " needs " +
                                         std::to_string(n));
    Tensor out(t, dims);
    for (int64_t i = 0; i < n; ++i)
      out.strings()[static_cast<size_t>(i)] = p.string_data(static_cast<int>(i));
    return out;
  }

  // Raw bytes: inline raw_data or an external file, validated before anything is allocated.
  const uint8_t* raw = nullptr;
  size_t raw_len = 0;
  MappedBytes mapped;
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : p.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = parse_external_int(kv.value(), "offset", what);
      else if (kv.key() == "length")
        length = parse_external_int(kv.value(), "length", what);
    }
    if (resolver) {
      mapped = (*resolver)(location);
      check(mapped.data != nullptr || mapped.size == 0,
            what + ": external data location '" + location + "' is unknown");
    } else {
      auto file = map_external(model_dir, location, name);
      mapped = MappedBytes{file->base, file->size, file};
    }
    check(offset >= 0 && static_cast<size_t>(offset) <= mapped.size,
          what + ": external offset " + std::to_string(offset) + " is beyond the end of '" +
              location + "' (" + std::to_string(mapped.size) + " bytes)");
    size_t avail = mapped.size - static_cast<size_t>(offset);
    size_t len = length < 0 ? avail : static_cast<size_t>(length);
    check(length < 0 || static_cast<size_t>(length) <= avail,
          what + ": external range offset " + std::to_string(offset) + " length " +
              std::to_string(length) + " runs past the end of '" + location + "' (" +
              std::to_string(mapped.size) + " bytes)");
    check(len == want, what + ": external data holds " + std::to_string(len) + " bytes; shape " +
                           dims_to_string(dims) + " of " + std::string(dtype_name(t)) + " needs " +
                           std::to_string(want));
    raw = static_cast<const uint8_t*>(mapped.data) + offset;
    raw_len = len;
    // Mapped, not copied, when the bytes are the in-memory layout and aligned enough.
    if (packed_bits(t) >= 8 && reinterpret_cast<uintptr_t>(raw) % 64 == 0 && n > 0) {
      return Tensor::view(t, dims, const_cast<uint8_t*>(raw), mapped.keeper);
    }
  } else if (p.has_raw_data()) {
    raw = reinterpret_cast<const uint8_t*>(p.raw_data().data());
    raw_len = p.raw_data().size();
    check(raw_len == want, what + ": raw_data holds " + std::to_string(raw_len) + " bytes; shape " +
                               dims_to_string(dims) + " of " + std::string(dtype_name(t)) +
                               " needs " + std::to_string(want));
  }

  if (raw) {
    Tensor out(t, dims);
    if (packed_bits(t) < 8) {
      unpack_subbyte(t, raw, raw_len, static_cast<uint8_t*>(out.raw()), n);
    } else if (want) {
      std::memcpy(out.raw(), raw, want);
    }
    return out;
  }

  // Typed fields.
  auto count_check = [&](int64_t have, const char* field) {
    check(have == n || (t == DType::Bool && false),
          what + ": " + field + " holds " + std::to_string(have) + " values; shape " +
              dims_to_string(dims) + " needs " + std::to_string(n));
  };
  Tensor out;
  switch (t) {
    case DType::F32:
      count_check(p.float_data_size(), "float_data");
      out = Tensor(t, dims);
      if (n) std::memcpy(out.raw(), p.float_data().data(), static_cast<size_t>(n) * 4);
      return out;
    case DType::F64:
      count_check(p.double_data_size(), "double_data");
      out = Tensor(t, dims);
      if (n) std::memcpy(out.raw(), p.double_data().data(), static_cast<size_t>(n) * 8);
      return out;
    case DType::I64:
      count_check(p.int64_data_size(), "int64_data");
      out = Tensor(t, dims);
      if (n) std::memcpy(out.raw(), p.int64_data().data(), static_cast<size_t>(n) * 8);
      return out;
    case DType::U32:
    case DType::U64: {
      count_check(p.uint64_data_size(), "uint64_data");
      out = Tensor(t, dims);
      for (int64_t i = 0; i < n; ++i) {
        uint64_t v = p.uint64_data(static_cast<int>(i));
        if (t == DType::U32)
          out.data<uint32_t>()[i] = static_cast<uint32_t>(v);
        else
          out.data<uint64_t>()[i] = v;
      }
      return out;
    }
    default: {
      // int32_data carries every type of 32 bits or fewer; 16-bit floats as their bit patterns,
      // sub-byte types packed as in raw_data (ONNX >= 1.17 convention). The value count is
      // checked before allocating: the dims alone may claim gigabytes.
      if (packed_bits(t) < 8) {
        int per = 8 / packed_bits(t);
        check(p.int32_data_size() == (n + per - 1) / per || p.int32_data_size() == n,
              what + ": int32_data holds " + std::to_string(p.int32_data_size()) + " values");
        out = Tensor(t, dims);
        if (p.int32_data_size() == n && per > 1 && n > 1) {
          for (int64_t i = 0; i < n; ++i) {
            out.data<uint8_t>()[i] = static_cast<uint8_t>(p.int32_data(static_cast<int>(i)));
          }
        } else {
          std::vector<uint8_t> packed(static_cast<size_t>(p.int32_data_size()));
          for (int i = 0; i < p.int32_data_size(); ++i)
            packed[static_cast<size_t>(i)] = static_cast<uint8_t>(p.int32_data(i));
          unpack_subbyte(t, packed.data(), packed.size(), static_cast<uint8_t*>(out.raw()), n);
        }
        return out;
      }
      count_check(p.int32_data_size(), "int32_data");
      out = Tensor(t, dims);
      const size_t es = dtype_size(t);
      auto* dst = static_cast<uint8_t*>(out.raw());
      for (int64_t i = 0; i < n; ++i) {
        int32_t v = p.int32_data(static_cast<int>(i));
        std::memcpy(dst + static_cast<size_t>(i) * es, &v, es);  // little-endian truncation
      }
      return out;
    }
  }
}

}  // namespace kpt::onnx_import
