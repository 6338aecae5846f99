#pragma once
// The KServe v2 (Triton) inference protocol: JSON tensors and the binary tensor data
// extension, in both directions. No HTTP here: bodies in, bodies out.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpt/session.hpp"
#include "kpt/tensor.hpp"

namespace kpt::server {

// "FP32", "INT64", "BYTES", ... <-> DType. Unknown names throw kpt::Error listing the known ones.
std::string datatype_name(DType t);
DType dtype_from_datatype(const std::string& name);

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::string id;
  std::vector<std::pair<std::string, Tensor>> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output
  bool binary_outputs = false;           // request parameter "binary_data_output"
  std::optional<int64_t> timeout_us;     // request parameter "timeout"
};

// Parses an inference request body. With `header_length` (the Inference-Header-Content-Length
// header) the first header_length bytes are JSON and the rest holds the binary tensors of the
// inputs that give "binary_data_size", in input order. Throws kpt::Error saying what is wrong.
// Requests in the common form are read by the hand-written reader (infer_json.hpp); the rest
// by parse_infer_request_dom, which builds nlohmann's DOM and words every error.
InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length);
InferRequest parse_infer_request_dom(std::string_view body, std::optional<size_t> header_length);

// A tensor from the binary tensor extension's layout: fixed-size types as little-endian raw
// elements (BOOL one byte), BYTES as a 4-byte little-endian length before each element.
// `where` names the input in errors.
Tensor tensor_from_binary(DType dtype, const Dims& dims, std::string_view bytes,
                          const std::string& where);

struct EncodedResponse {
  std::string body;
  std::optional<size_t> header_length;  // set when binary tensors follow the JSON
};

EncodedResponse encode_infer_response(const std::string& model, const std::string& version,
                                      const std::string& id, const std::vector<std::string>& names,
                                      const std::vector<Tensor>& outputs,
                                      const InferRequest& request);

// {"error": message}, as the protocol defines error bodies.
std::string error_body(const std::string& message);

}  // namespace kpt::server
