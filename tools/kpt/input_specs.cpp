#include "tools/kpt/input_specs.hpp"

#include "core/npy.hpp"
#include "kpt/error.hpp"
#include "runtime/random_inputs.hpp"

namespace kpt::cli {

std::map<std::string, Tensor> make_inputs(const Session& s, const std::vector<std::string>& specs,
                                          uint64_t seed) {
  std::map<std::string, Dims> shapes;
  std::map<std::string, Tensor> given;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    check(eq != std::string::npos && eq > 0,
          "--input '" + spec + "': expected NAME=FILE.npy or NAME=DIMS (like input_ids=8x128)");
    std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
    check(!shapes.count(name) && !given.count(name), "--input " + name + " is given twice");
    if (value.size() > 4 && value.substr(value.size() - 4) == ".npy") {
      given[name] = read_npy(value);
    } else {
      check(value.find_first_not_of("0123456789x") == std::string::npos,
            "--input " + spec + ": expected a .npy file or dims like 8x128");
      shapes[name] = runtime::parse_dims(value);
    }
  }
  return runtime::make_valid_inputs(s.graph(), s.inputs(), shapes, given, seed);
}

}  // namespace kpt::cli
