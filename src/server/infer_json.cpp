#include "server/infer_json.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace kpt::server {

namespace {

// Thrown inside the reader when the body leaves the form it takes; never escapes this file.
struct GiveUp {};

class Reader {
 public:
  explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool consume(char c) {
    skip_space();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) throw GiveUp{};
  }
  bool next_is(char c) {
    skip_space();
    return p_ < end_ && *p_ == c;
  }
  bool at_end() {
    skip_space();
    return p_ == end_;
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  // A string without escapes, control characters or non-ASCII bytes (the others go to nlohmann,
  // which unescapes and validates UTF-8).
  std::string_view plain_string() {
    expect('"');
    const char* start = p_;
    for (; p_ < end_; ++p_) {
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') return {start, static_cast<size_t>(p_++ - start)};
      if (c == '\\' || c < 0x20 || c >= 0x80) throw GiveUp{};
    }
    throw GiveUp{};
  }

  bool boolean() {
    skip_space();
    if (end_ - p_ >= 4 && std::string_view(p_, 4) == "true") return p_ += 4, true;
    if (end_ - p_ >= 5 && std::string_view(p_, 5) == "false") return p_ += 5, false;
    throw GiveUp{};
  }

  // One JSON number token, checked against JSON's grammar (from_chars alone would take "inf",
  // leading zeros or a missing integer part).
  std::string_view number(bool& integer) {
    skip_space();
    const char* start = p_;
    auto digits = [&] {
      const char* d = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == d) throw GiveUp{};
    };
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else {
      digits();
    }
    integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      ++p_;
      digits();
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      digits();
    }
    return {start, static_cast<size_t>(p_ - start)};
  }

  // As nlohmann converts: an integer token is read as an integer first ("-0" is then +0.0).
  double real() {
    bool integer;
    std::string_view tok = number(integer);
    if (integer) {
      int64_t i;
      auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), i);
      if (ec == std::errc() && ptr == tok.data() + tok.size()) return static_cast<double>(i);
      uint64_t u;
      auto [uptr, uec] = std::from_chars(tok.data(), tok.data() + tok.size(), u);
      if (uec == std::errc() && uptr == tok.data() + tok.size()) return static_cast<double>(u);
    }
    double v;
    auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc() || ptr != tok.data() + tok.size()) throw GiveUp{};
    return v;
  }

  int64_t integer() {
    bool is_integer;
    std::string_view tok = number(is_integer);
    int64_t v;
    auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (!is_integer || ec != std::errc() || ptr != tok.data() + tok.size()) throw GiveUp{};
    return v;
  }

 private:
  const char* p_;
  const char* end_;
};

template <typename T>
T checked_integer(Reader& r) {
  int64_t v = r.integer();
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v < 0) throw GiveUp{};
  } else {
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        v > static_cast<int64_t>(std::numeric_limits<T>::max()))
      throw GiveUp{};
  }
  return static_cast<T>(v);
}

// Reads "data" (flat or nested arrays) into `t`, element by element in row-major order.
class DataReader {
 public:
  DataReader(Reader& r, Tensor& t) : r_(r), t_(t), n_(t.numel()) {}

  void read() {
    array();
    if (i_ != n_) throw GiveUp{};
  }

 private:
  void array(int depth = 0) {
    if (depth >= 32) throw GiveUp{};  // the DOM parser words the error
    r_.expect('[');
    if (r_.consume(']')) return;
    do {
      if (r_.next_is('[')) {
        array(depth + 1);
      } else {
        if (i_ >= n_) throw GiveUp{};
        element(i_++);
      }
    } while (r_.consume(','));
    r_.expect(']');
  }

  void element(int64_t i) {
    switch (t_.dtype()) {
      case DType::F32:
        t_.data<float>()[i] = static_cast<float>(r_.real());
        return;
      case DType::F64:
        t_.data<double>()[i] = r_.real();
        return;
      case DType::F16:
        t_.data<uint16_t>()[i] = float_to_half(static_cast<float>(r_.real()));
        return;
      case DType::BF16:
        t_.data<uint16_t>()[i] = float_to_bfloat16(static_cast<float>(r_.real()));
        return;
      case DType::Bool:
        t_.data<uint8_t>()[i] = r_.boolean() ? 1 : 0;
        return;
      case DType::U8:
        t_.data<uint8_t>()[i] = checked_integer<uint8_t>(r_);
        return;
      case DType::U16:
        t_.data<uint16_t>()[i] = checked_integer<uint16_t>(r_);
        return;
      case DType::U32:
        t_.data<uint32_t>()[i] = checked_integer<uint32_t>(r_);
        return;
      case DType::U64:
        t_.data<uint64_t>()[i] = checked_integer<uint64_t>(r_);
        return;
      case DType::I8:
        t_.data<int8_t>()[i] = checked_integer<int8_t>(r_);
        return;
      case DType::I16:
        t_.data<int16_t>()[i] = checked_integer<int16_t>(r_);
        return;
      case DType::I32:
        t_.data<int32_t>()[i] = checked_integer<int32_t>(r_);
        return;
      case DType::I64:
        t_.data<int64_t>()[i] = r_.integer();
        return;
      case DType::String:
        t_.strings()[static_cast<size_t>(i)] = std::string(r_.plain_string());
        return;
      default:
        throw GiveUp{};
    }
  }

  Reader& r_;
  Tensor& t_;
  int64_t n_;
  int64_t i_ = 0;
};

// Calls `field(key)` for each key of a JSON object; a key seen twice gives up (nlohmann keeps
// the last one, which the reader would not notice).
template <typename F>
void read_object(Reader& r, F&& field) {
  r.expect('{');
  if (r.consume('}')) return;
  std::string_view seen[8];
  size_t count = 0;
  do {
    std::string_view key = r.plain_string();
    for (size_t k = 0; k < count; ++k)
      if (seen[k] == key) throw GiveUp{};
    if (count == std::size(seen)) throw GiveUp{};
    seen[count++] = key;
    r.expect(':');
    field(key);
  } while (r.consume(','));
  r.expect('}');
}

void read_input(Reader& r, InferRequest& req, std::string_view binary, bool has_binary_part,
                size_t& offset) {
  std::string name;
  std::optional<DType> dtype;
  std::optional<Dims> dims;
  std::optional<Tensor> tensor;
  std::optional<size_t> binary_size;
  read_object(r, [&](std::string_view key) {
    if (key == "name") {
      name = r.plain_string();
    } else if (key == "datatype") {
      dtype = dtype_from_datatype(std::string(r.plain_string()));
    } else if (key == "shape") {
      Dims d;
      r.expect('[');
      if (!r.consume(']')) {
        do {
          int64_t v = r.integer();
          if (v < 0) throw GiveUp{};
          d.push_back(v);
        } while (r.consume(','));
        r.expect(']');
      }
      if (d.size() > 16) throw GiveUp{};
      element_count(d);  // throws on overflow
      dims = std::move(d);
    } else if (key == "data") {
      if (!dtype || !dims) throw GiveUp{};
      // Every element takes at least one character: a shape the body cannot hold must not
      // size an allocation (the DOM parser then reports the count).
      if (static_cast<size_t>(element_count(*dims)) > r.remaining()) throw GiveUp{};
      tensor =
          *dtype == DType::String ? Tensor(*dtype, *dims) : Tensor::uninitialized(*dtype, *dims);
      DataReader(r, *tensor).read();
    } else if (key == "parameters") {
      read_object(r, [&](std::string_view p) {
        if (p != "binary_data_size") throw GiveUp{};
        int64_t v = r.integer();
        if (v < 0) throw GiveUp{};
        binary_size = static_cast<size_t>(v);
      });
    } else {
      throw GiveUp{};
    }
  });
  if (name.empty() || !dtype || !dims || tensor.has_value() == binary_size.has_value())
    throw GiveUp{};
  for (const auto& [n, _] : req.inputs)
    if (n == name) throw GiveUp{};
  if (binary_size) {
    if (!has_binary_part || offset + *binary_size > binary.size()) throw GiveUp{};
    tensor = tensor_from_binary(*dtype, *dims, binary.substr(offset, *binary_size),
                                "input '" + name + "'");
    offset += *binary_size;
  }
  req.inputs.emplace_back(std::move(name), std::move(*tensor));
}

void read_output(Reader& r, InferRequest& req) {
  RequestedOutput out;
  read_object(r, [&](std::string_view key) {
    if (key == "name") {
      out.name = r.plain_string();
    } else if (key == "parameters") {
      read_object(r, [&](std::string_view p) {
        if (p != "binary_data") throw GiveUp{};
        out.binary = r.boolean();
      });
    } else {
      throw GiveUp{};
    }
  });
  if (out.name.empty()) throw GiveUp{};
  req.outputs.push_back(std::move(out));
}

template <typename F>
void read_array(Reader& r, F&& element) {
  r.expect('[');
  if (r.consume(']')) return;
  do element();
  while (r.consume(','));
  r.expect(']');
}

template <typename T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

template <typename F>
void append_floats(std::string& out, int64_t n, F&& value) {
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ',';
    auto v = value(i);
    if (std::isfinite(v)) {
      append_number(out, v);
    } else {
      out += "null";
    }
  }
}

template <typename T>
void append_integers(std::string& out, const T* data, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ',';
    append_number(out, data[i]);
  }
}

}  // namespace

std::optional<InferRequest> read_infer_request_fast(std::string_view header,
                                                    std::string_view binary, bool has_binary_part) {
  try {
    Reader r(header);
    InferRequest req;
    bool has_inputs = false;
    size_t offset = 0;
    read_object(r, [&](std::string_view key) {
      if (key == "id") {
        req.id = r.plain_string();
      } else if (key == "inputs") {
        has_inputs = true;
        read_array(r, [&] { read_input(r, req, binary, has_binary_part, offset); });
      } else if (key == "outputs") {
        read_array(r, [&] { read_output(r, req); });
      } else if (key == "parameters") {
        read_object(r, [&](std::string_view p) {
          if (p == "binary_data_output") {
            req.binary_outputs = r.boolean();
          } else if (p == "timeout") {
            int64_t v = r.integer();
            if (v < 0) throw GiveUp{};
            req.timeout_us = v;
          } else {
            throw GiveUp{};
          }
        });
      } else {
        throw GiveUp{};
      }
    });
    if (!has_inputs || !r.at_end() || offset != binary.size()) return std::nullopt;
    return req;
  } catch (...) {
    // Whatever went wrong, the full parser reads the body again and says what.
    return std::nullopt;
  }
}

void append_json_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    plain = plain && c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
  }
  if (!plain) {
    out += nlohmann::json(std::string(s))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_json_data(std::string& out, const Tensor& t) {
  int64_t n = t.numel();
  out.reserve(out.size() + static_cast<size_t>(n) * 12 + 2);
  out += '[';
  switch (t.dtype()) {
    case DType::F32:
      append_floats(out, n, [&](int64_t i) { return t.data<float>()[i]; });
      break;
    case DType::F64:
      append_floats(out, n, [&](int64_t i) { return t.data<double>()[i]; });
      break;
    case DType::F16:
      append_floats(out, n, [&](int64_t i) { return half_to_float(t.data<uint16_t>()[i]); });
      break;
    case DType::BF16:
      append_floats(out, n, [&](int64_t i) { return bfloat16_to_float(t.data<uint16_t>()[i]); });
      break;
    case DType::Bool:
      for (int64_t i = 0; i < n; ++i)
        out += t.data<uint8_t>()[i] ? (i ? ",true" : "true") : (i ? ",false" : "false");
      break;
    case DType::String:
      for (int64_t i = 0; i < n; ++i) {
        if (i) out += ',';
        append_json_string(out, t.strings()[static_cast<size_t>(i)]);
      }
      break;
    case DType::U8:
      append_integers(out, t.data<uint8_t>(), n);
      break;
    case DType::U16:
      append_integers(out, t.data<uint16_t>(), n);
      break;
    case DType::U32:
      append_integers(out, t.data<uint32_t>(), n);
      break;
    case DType::U64:
      append_integers(out, t.data<uint64_t>(), n);
      break;
    case DType::I8:
      append_integers(out, t.data<int8_t>(), n);
      break;
    case DType::I16:
      append_integers(out, t.data<int16_t>(), n);
      break;
    case DType::I32:
      append_integers(out, t.data<int32_t>(), n);
      break;
    case DType::I64:
      append_integers(out, t.data<int64_t>(), n);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) {
        if (i) out += ',';
        append_number(out, t.get_i64(i));
      }
      break;
  }
  out += ']';
}

}  // namespace kpt::server
