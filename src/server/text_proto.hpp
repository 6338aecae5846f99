#pragma once
// A reader for the subset of the protobuf text format that Triton's config.pbtxt files use:
// fields `name: value`, messages `name { ... }` (the colon optional), lists `name: [a, b]`
// (of values or of messages), repeated fields, double- or single-quoted strings, numbers,
// enum identifiers, `#` comments, and `,` or `;` between fields. No schema here: the caller
// checks names and types against the fields it knows (see model_config.cpp).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kpt::server {

struct TextMessage;

struct TextField {
  enum class Type { String, Number, Identifier, Message };
  std::string name;
  int line = 0;  // 1-based line of the field's value, for error messages
  Type type = Type::String;
  std::string text;  // the unescaped string, the number's spelling or the identifier
  std::shared_ptr<TextMessage> message;
};

// A list `name: [a, b]` becomes one field per element, as the repeated form `name: a name: b`.
struct TextMessage {
  std::vector<TextField> fields;
};

// Throws kpt::Error "WHERE:LINE: what is wrong" on malformed text.
TextMessage parse_text_proto(std::string_view text, const std::string& where);

}  // namespace kpt::server
