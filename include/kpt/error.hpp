#pragma once
#include <concepts>
#include <stdexcept>
#include <string>

namespace kpt {

// The one error type of the project. The message says what was wrong and what was expected;
// callers add context (model, node, input) as the error travels up.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Raised when a model needs something this build does not implement (an op, a dtype of an
// op, an attribute value). Kept apart from Error so conformance can report "unsupported".
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& message) : Error(message) {}
};

[[noreturn]] void fail(const std::string& message);
[[noreturn]] void unsupported(const std::string& message);

// Throws Error(message) unless condition holds. Use for checks on user input, not invariants.
inline void check(bool condition, const std::string& message) {
  if (!condition) fail(message);
}
// For checks that run per inference: the message (shapes printed, names joined) is built only
// when the check fails, e.g. check(ok, [&] { return "got " + dims_to_string(d); }).
template <std::invocable MakeMessage>
inline void check(bool condition, MakeMessage&& make_message) {
  if (!condition) fail(make_message());
}

}  // namespace kpt
