#include "tools/kpt/commands.hpp"
namespace kpt::cli {
void add_doctor(CLI::App&) {}
}  // namespace kpt::cli
