#include "tools/kpt/commands.hpp"
namespace kpt::cli {
void add_inspect(CLI::App&) {}
}  // namespace kpt::cli
