#pragma once
#include <CLI/CLI.hpp>

namespace kpt::cli {

// Each subcommand lives in its own file and adds itself to the app.
void add_doctor(CLI::App& app);
void add_inspect(CLI::App& app);
void add_run(CLI::App& app);
void add_conformance(CLI::App& app);
void add_optimize(CLI::App& app);
void add_bench(CLI::App& app);
void add_validate(CLI::App& app);
void add_serve(CLI::App& app);
void add_export(CLI::App& app);

}  // namespace kpt::cli
