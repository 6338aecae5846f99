#include "kpt/error.hpp"

namespace kpt {

void fail(const std::string& message) {
  throw Error(message);
}
void unsupported(const std::string& message) {
  throw Unsupported(message);
}

}  // namespace kpt
