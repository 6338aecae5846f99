#include "server/text_proto.hpp"

#include "kpt/error.hpp"

namespace kpt::server {

namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& where) : s_(text), where_(where) {}

  TextMessage document() {
    TextMessage m = fields('\0');
    skip_space();
    if (pos_ < s_.size()) error("unexpected '" + std::string(1, s_[pos_]) + "'");
    return m;
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    fail(where_ + ":" + std::to_string(line_) + ": " + what);
  }

  // Whitespace and '#' comments up to the end of their line.
  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  static bool identifier_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
  }

  std::string identifier() {
    skip_space();
    size_t start = pos_;
    while (pos_ < s_.size() && identifier_char(s_[pos_], pos_ == start)) ++pos_;
    if (pos_ == start) {
      if (pos_ >= s_.size()) error("unexpected end of file, expected a field name");
      error("expected a field name, found '" + std::string(1, s_[pos_]) + "'");
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  // Fields until `close` ('}' or '>'), or the end of the text when close is '\0'.
  TextMessage fields(char close) {
    TextMessage m;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) {
        if (close) error(std::string("unexpected end of file, expected '") + close + "'");
        return m;
      }
      if (close && s_[pos_] == close) {
        ++pos_;
        return m;
      }
      std::string name = identifier();
      bool colon = consume(':');
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '[') {
        // A list of messages may leave out the colon (Triton's configs do); of values not.
        ++pos_;
        if (!consume(']')) {
          do m.fields.push_back(value(name, colon));
          while (consume(','));
          if (!consume(']')) error("expected ',' or ']' in the list of field '" + name + "'");
        }
      } else {
        m.fields.push_back(value(name, colon));
      }
      // Fields may be separated by ',' or ';' as well as by whitespace.
      if (!consume(',')) consume(';');
    }
  }

  TextField value(const std::string& name, bool had_colon) {
    skip_space();
    TextField f;
    f.name = name;
    f.line = line_;
    if (pos_ >= s_.size()) error("unexpected end of file, expected the value of '" + name + "'");
    char c = s_[pos_];
    if (c == '{' || c == '<') {
      ++pos_;
      f.type = TextField::Type::Message;
      f.message = std::make_shared<TextMessage>(fields(c == '{' ? '}' : '>'));
      return f;
    }
    if (!had_colon) error("expected ':' after field name '" + name + "'");
    if (c == '"' || c == '\'') {
      f.type = TextField::Type::String;
      f.text = string_literal(c);
    } else if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) {
      f.type = TextField::Type::Number;
      size_t start = pos_++;
      while (pos_ < s_.size() && (identifier_char(s_[pos_], false) || s_[pos_] == '.' ||
                                  ((s_[pos_] == '-' || s_[pos_] == '+') &&
                                   (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E'))))
        ++pos_;
      f.text = std::string(s_.substr(start, pos_ - start));
    } else if (identifier_char(c, true)) {
      f.type = TextField::Type::Identifier;
      f.text = identifier();
    } else {
      error("unexpected '" + std::string(1, c) + "' as the value of '" + name + "'");
    }
    return f;
  }

  std::string string_literal(char quote) {
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      char c = s_[pos_++];
      if (c == '\n') error("string not closed before the end of the line");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '\\':
        case '\'':
        case '"':
          out += e;
          break;
        default:
          error(std::string("unsupported escape '\\") + e + "' in a string");
      }
    }
    if (pos_ >= s_.size()) error("string not closed before the end of the file");
    ++pos_;
    // Adjacent literals concatenate, as in C and in protobuf's text format.
    skip_space();
    if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) out += string_literal(s_[pos_]);
    return out;
  }

  std::string_view s_;
  const std::string& where_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

TextMessage parse_text_proto(std::string_view text, const std::string& where) {
  return Parser(text, where).document();
}

}  // namespace kpt::server
