#include "server/protocol.hpp"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "kpt/error.hpp"
#include "server/infer_json.hpp"

namespace kpt::server {

namespace {

using nlohmann::json;

struct DatatypeName {
  DType dtype;
  const char* name;
};
constexpr DatatypeName kDatatypes[] = {
    {DType::Bool, "BOOL"},  {DType::U8, "UINT8"},    {DType::U16, "UINT16"}, {DType::U32, "UINT32"},
    {DType::U64, "UINT64"}, {DType::I8, "INT8"},     {DType::I16, "INT16"},  {DType::I32, "INT32"},
    {DType::I64, "INT64"},  {DType::F16, "FP16"},    {DType::F32, "FP32"},   {DType::F64, "FP64"},
    {DType::BF16, "BF16"},  {DType::String, "BYTES"}};

// Flattens nested arrays (the protocol allows both flat and nested "data") in row-major order.
// Nesting deeper than any tensor's rank is refused before it can exhaust the stack.
constexpr int kMaxDataNesting = 32;

void flatten(const json& j, std::vector<const json*>& out, const std::string& where,
             int depth = 0) {
  if (j.is_array()) {
    check(depth < kMaxDataNesting, where + ": 'data' nests arrays deeper than " +
                                       std::to_string(kMaxDataNesting) + " levels");
    for (const auto& e : j) flatten(e, out, where, depth + 1);
  } else {
    out.push_back(&j);
  }
}

template <typename T>
void fill_integers(Tensor& t, const std::vector<const json*>& items, const std::string& where) {
  T* dst = t.data<T>();
  for (size_t i = 0; i < items.size(); ++i) {
    const json& v = *items[i];
    bool ok = v.is_number_integer();
    if (ok && v.is_number_unsigned()) {
      ok = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    } else if (ok) {
      int64_t x = v.get<int64_t>();
      ok = x >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           (x < 0 ||
            static_cast<uint64_t>(x) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
    }
    check(ok, where + ": element " + std::to_string(i) + " is " + v.dump().substr(0, 40) +
                  ", expected an integer in the range of the datatype");
    dst[i] = v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                    : static_cast<T>(v.get<int64_t>());
  }
}

double number_at(const json& v, size_t i, const std::string& where) {
  check(v.is_number(), where + ": element " + std::to_string(i) + " is " + v.dump().substr(0, 40) +
                           ", expected a number");
  return v.get<double>();
}

Tensor tensor_from_json(DType dtype, const Dims& dims, const json& data, const std::string& where) {
  std::vector<const json*> items;
  flatten(data, items, where);
  int64_t n = element_count(dims);
  check(static_cast<int64_t>(items.size()) == n,
        where + ": 'data' holds " + std::to_string(items.size()) + " elements, shape " +
            dims_to_string(dims) + " needs " + std::to_string(n));
  Tensor t(dtype, dims);
  switch (dtype) {
    case DType::F32:
      for (size_t i = 0; i < items.size(); ++i)
        t.data<float>()[i] = static_cast<float>(number_at(*items[i], i, where));
      break;
    case DType::F64:
      for (size_t i = 0; i < items.size(); ++i)
        t.data<double>()[i] = number_at(*items[i], i, where);
      break;
    case DType::F16:
      for (size_t i = 0; i < items.size(); ++i)
        t.data<uint16_t>()[i] = float_to_half(static_cast<float>(number_at(*items[i], i, where)));
      break;
    case DType::BF16:
      for (size_t i = 0; i < items.size(); ++i)
        t.data<uint16_t>()[i] =
            float_to_bfloat16(static_cast<float>(number_at(*items[i], i, where)));
      break;
    case DType::Bool:
      for (size_t i = 0; i < items.size(); ++i) {
        check(items[i]->is_boolean(), where + ": element " + std::to_string(i) + " is " +
                                          items[i]->dump().substr(0, 40) +
                                          ", expected true or false");
        t.data<uint8_t>()[i] = items[i]->get<bool>() ? 1 : 0;
      }
      break;
    case DType::U8:
      fill_integers<uint8_t>(t, items, where);
      break;
    case DType::U16:
      fill_integers<uint16_t>(t, items, where);
      break;
    case DType::U32:
      fill_integers<uint32_t>(t, items, where);
      break;
    case DType::U64:
      fill_integers<uint64_t>(t, items, where);
      break;
    case DType::I8:
      fill_integers<int8_t>(t, items, where);
      break;
    case DType::I16:
      fill_integers<int16_t>(t, items, where);
      break;
    case DType::I32:
      fill_integers<int32_t>(t, items, where);
      break;
    case DType::I64:
      fill_integers<int64_t>(t, items, where);
      break;
    case DType::String:
      for (size_t i = 0; i < items.size(); ++i) {
        check(items[i]->is_string(), where + ": element " + std::to_string(i) +
                                         " is not a string (BYTES data are JSON strings)");
        t.strings()[i] = items[i]->get<std::string>();
      }
      break;
    default:
      fail(where + ": datatype not servable");
  }
  return t;
}

void append_binary(const Tensor& t, std::string& out) {
  if (t.dtype() == DType::String) {
    for (const auto& s : t.strings()) {
      uint32_t len = static_cast<uint32_t>(s.size());
      out.append(reinterpret_cast<const char*>(&len), 4);
      out.append(s);
    }
  } else {
    out.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
}

size_t binary_size(const Tensor& t) {
  if (t.dtype() != DType::String) return t.nbytes();
  size_t n = 0;
  for (const auto& s : t.strings()) n += 4 + s.size();
  return n;
}

bool get_bool_param(const json& params, const char* key, const std::string& where) {
  if (!params.contains(key)) return false;
  check(params[key].is_boolean(), where + ": parameter '" + key + "' must be true or false");
  return params[key].get<bool>();
}

}  // namespace

Tensor tensor_from_binary(DType dtype, const Dims& dims, std::string_view bytes,
                          const std::string& where) {
  int64_t n = element_count(dims);
  if (dtype == DType::String) {
    Tensor t(dtype, dims);
    size_t pos = 0;
    for (int64_t i = 0; i < n; ++i) {
      check(pos + 4 <= bytes.size(),
            where + ": binary BYTES data ends inside element " + std::to_string(i));
      uint32_t len;
      std::memcpy(&len, bytes.data() + pos, 4);
      pos += 4;
      check(pos + len <= bytes.size(), where + ": binary BYTES element " + std::to_string(i) +
                                           " claims " + std::to_string(len) +
                                           " bytes past the end");
      t.strings()[i] = std::string(bytes.substr(pos, len));
      pos += len;
    }
    check(pos == bytes.size(), where + ": " + std::to_string(bytes.size() - pos) +
                                   " bytes left over after " + std::to_string(n) +
                                   " BYTES elements");
    return t;
  }
  size_t need = static_cast<size_t>(n) * dtype_size(dtype);
  check(bytes.size() == need, where + ": binary_data_size is " + std::to_string(bytes.size()) +
                                  " bytes, shape " + dims_to_string(dims) + " of " +
                                  datatype_name(dtype) + " needs " + std::to_string(need));
  Tensor t = Tensor::uninitialized(dtype, dims);
  if (need) std::memcpy(t.raw(), bytes.data(), need);
  return t;
}

std::string datatype_name(DType t) {
  for (const auto& d : kDatatypes)
    if (d.dtype == t) return d.name;
  return std::string(dtype_name(t));
}

DType dtype_from_datatype(const std::string& name) {
  for (const auto& d : kDatatypes)
    if (name == d.name) return d.dtype;
  std::string known;
  for (const auto& d : kDatatypes) known += (known.empty() ? "" : ", ") + std::string(d.name);
  fail("unknown datatype '" + name.substr(0, 40) + "' (expected one of " + known + ")");
}

InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length) {
  if (!header_length || *header_length <= body.size()) {
    std::string_view header = header_length ? body.substr(0, *header_length) : body;
    std::string_view binary = header_length ? body.substr(*header_length) : std::string_view();
    if (auto fast = read_infer_request_fast(header, binary, header_length.has_value()))
      return std::move(*fast);
  }
  return parse_infer_request_dom(body, header_length);
}

InferRequest parse_infer_request_dom(std::string_view body, std::optional<size_t> header_length) {
  std::string_view header = body, binary;
  if (header_length) {
    check(*header_length <= body.size(),
          "Inference-Header-Content-Length is " + std::to_string(*header_length) +
              " but the body has only " + std::to_string(body.size()) + " bytes");
    header = body.substr(0, *header_length);
    binary = body.substr(*header_length);
  }
  json j = json::parse(header, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), "malformed JSON in the inference request body");
  check(j.is_object(), "the inference request must be a JSON object with an 'inputs' array");
  InferRequest r;
  if (j.contains("id")) {
    check(j["id"].is_string(), "'id' must be a string");
    r.id = j["id"].get<std::string>();
  }
  if (j.contains("parameters")) {
    const json& p = j["parameters"];
    check(p.is_object(), "'parameters' must be a JSON object");
    r.binary_outputs = get_bool_param(p, "binary_data_output", "request");
    if (p.contains("timeout")) {
      check(p["timeout"].is_number_integer() && p["timeout"].get<int64_t>() >= 0,
            "parameter 'timeout' must be a non-negative integer (microseconds)");
      r.timeout_us = p["timeout"].get<int64_t>();
    }
  }
  check(j.contains("inputs") && j["inputs"].is_array(),
        "the inference request needs an 'inputs' array");
  size_t offset = 0;
  for (size_t i = 0; i < j["inputs"].size(); ++i) {
    const json& in = j["inputs"][i];
    std::string where = "inputs[" + std::to_string(i) + "]";
    check(in.is_object(), where + ": expected an object with name, shape, datatype and data");
    check(in.contains("name") && in["name"].is_string(), where + ": 'name' (a string) is required");
    std::string name = in["name"].get<std::string>();
    where = "input '" + name.substr(0, 100) + "'";
    for (const auto& [n, _] : r.inputs) check(n != name, where + " is given twice");
    check(in.contains("datatype") && in["datatype"].is_string(),
          where + ": 'datatype' (a string like \"FP32\") is required");
    DType dtype = dtype_from_datatype(in["datatype"].get<std::string>());
    check(in.contains("shape") && in["shape"].is_array(),
          where + ": 'shape' (an array) is required");
    Dims dims;
    for (const auto& d : in["shape"]) {
      check(d.is_number_integer() && d.get<int64_t>() >= 0,
            where + ": 'shape' entries must be non-negative integers");
      dims.push_back(d.get<int64_t>());
    }
    check(dims.size() <= 16, where + ": rank above 16");
    element_count(dims);  // checks the product for overflow
    std::optional<size_t> binary_size;
    if (in.contains("parameters")) {
      const json& p = in["parameters"];
      check(p.is_object(), where + ": 'parameters' must be an object");
      if (p.contains("binary_data_size")) {
        check(p["binary_data_size"].is_number_unsigned(),
              where + ": 'binary_data_size' must be a non-negative integer");
        binary_size = p["binary_data_size"].get<size_t>();
      }
    }
    if (binary_size) {
      check(header_length.has_value(), where +
                                           ": 'binary_data_size' given but the request has no "
                                           "Inference-Header-Content-Length header");
      check(!in.contains("data"), where + ": give either 'data' or 'binary_data_size', not both");
      check(offset + *binary_size <= binary.size(),
            where + ": binary data runs past the end of the body (" +
                std::to_string(binary.size()) + " binary bytes, this input needs " +
                std::to_string(*binary_size) + " from offset " + std::to_string(offset) + ")");
      r.inputs.emplace_back(
          name, tensor_from_binary(dtype, dims, binary.substr(offset, *binary_size), where));
      offset += *binary_size;
    } else {
      check(in.contains("data"), where +
                                     ": 'data' is required (or 'binary_data_size' with the "
                                     "binary tensor extension)");
      r.inputs.emplace_back(name, tensor_from_json(dtype, dims, in["data"], where));
    }
  }
  check(offset == binary.size(),
        std::to_string(binary.size() - offset) +
            " bytes of binary data after the JSON header belong to no input");
  if (j.contains("outputs")) {
    check(j["outputs"].is_array(), "'outputs' must be an array");
    for (const auto& o : j["outputs"]) {
      check(o.is_object() && o.contains("name") && o["name"].is_string(),
            "each entry of 'outputs' needs a 'name'");
      RequestedOutput ro;
      ro.name = o["name"].get<std::string>();
      if (o.contains("parameters")) {
        check(o["parameters"].is_object(),
              "output '" + ro.name + "': 'parameters' must be an object");
        ro.binary = get_bool_param(o["parameters"], "binary_data", "output '" + ro.name + "'");
      }
      r.outputs.push_back(std::move(ro));
    }
  }
  return r;
}

EncodedResponse encode_infer_response(const std::string& model, const std::string& version,
                                      const std::string& id, const std::vector<std::string>& names,
                                      const std::vector<Tensor>& outputs,
                                      const InferRequest& request) {
  EncodedResponse r;
  std::string& out = r.body;
  out.reserve(256);
  out += "{\"model_name\":";
  append_json_string(out, model);
  out += ",\"model_version\":";
  append_json_string(out, version);
  if (!id.empty()) {
    out += ",\"id\":";
    append_json_string(out, id);
  }
  out += ",\"outputs\":[";
  std::vector<const Tensor*> binary;
  auto add = [&](size_t k, bool as_binary) {
    const Tensor& t = outputs[k];
    if (out.back() != '[') out += ',';
    out += "{\"name\":";
    append_json_string(out, names[k]);
    out += ",\"datatype\":\"";
    out += datatype_name(t.dtype());
    out += "\",\"shape\":[";
    for (size_t d = 0; d < t.rank(); ++d) {
      if (d) out += ',';
      out += std::to_string(t.dims()[d]);
    }
    out += ']';
    if (as_binary) {
      out += ",\"parameters\":{\"binary_data_size\":";
      out += std::to_string(binary_size(t));
      out += '}';
      binary.push_back(&t);
    } else {
      out += ",\"data\":";
      append_json_data(out, t);
    }
    out += '}';
  };
  if (request.outputs.empty()) {
    for (size_t k = 0; k < outputs.size(); ++k) add(k, request.binary_outputs);
  } else {
    for (const auto& ro : request.outputs) {
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == ro.name) add(k, ro.binary || request.binary_outputs);
    }
  }
  out += "]}";
  if (!binary.empty()) {
    r.header_length = r.body.size();
    for (const Tensor* t : binary) append_binary(*t, r.body);
  }
  return r;
}

std::string error_body(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kpt::server
