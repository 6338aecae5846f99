#include <iostream>

#include "kpt/error.hpp"
#include "tools/kpt/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"kpt: import, optimize, run and serve PyTorch models (ONNX)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kpt " KPT_VERSION_STRING);
  kpt::cli::add_doctor(app);
  kpt::cli::add_inspect(app);
  kpt::cli::add_run(app);
  kpt::cli::add_conformance(app);
  kpt::cli::add_optimize(app);
  kpt::cli::add_bench(app);
  kpt::cli::add_validate(app);
  kpt::cli::add_serve(app);
  kpt::cli::add_export(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const kpt::Error& e) {
    std::cerr << "kpt: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "kpt: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
