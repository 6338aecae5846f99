#pragma once
// The hot path of the KServe v2 JSON codec, written by hand: a reader for inference requests in
// the form clients send them and a writer for inference responses. Building nlohmann's DOM for
// a request and a response cost more CPU than everything else a small inference does. The
// reader takes only the common form (known keys, plain strings, numbers, flat or nested data
// after shape and datatype); anything else makes it give up, and protocol.cpp's nlohmann parser
// reads the body instead and words the errors.
#include <optional>
#include <string>
#include <string_view>

#include "kpt/tensor.hpp"
#include "server/protocol.hpp"

namespace kpt::server {

// The request, or nullopt when the body (JSON header `header`, binary tensors `binary` when
// `has_binary_part`) uses anything this reader does not take or is invalid in any way.
std::optional<InferRequest> read_infer_request_fast(std::string_view header,
                                                    std::string_view binary, bool has_binary_part);

// Appends `s` as a JSON string (escaped; invalid UTF-8 replaced as nlohmann's dump does).
void append_json_string(std::string& out, std::string_view s);

// Appends the elements of `t` as a flat JSON array: floats in their shortest exact form, NaN and
// infinities as null (JSON has no spelling for them), BOOL as true/false, BYTES as strings.
void append_json_data(std::string& out, const Tensor& t);

}  // namespace kpt::server
