#pragma once
// The message of the kpt::Error that `f` throws, or "" when it throws none: tests assert on
// what an error names.
#include <functional>
#include <string>

#include "kpt/error.hpp"

namespace kpt::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace kpt::testing
