// `lth report RUN`: rebuilds report.md, results.csv/json and the plots of a run folder.
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "report/report.h"

namespace lth::cli {

void add_report_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "Write the results table, CSV, JSON and plots of a run");
  auto run = std::make_shared<std::string>();
  auto no_plots = std::make_shared<bool>(false);
  cmd->add_option("run", *run, "run folder (the --save folder of lth imp)")->required();
  cmd->add_flag("--no_plots", *no_plots, "skip the plots");
  cmd->callback([run, no_plots] {
    const auto folder = user_folder(*run);
    // Report files go into the folder: refuse one that is not a run (a data root, a home
    // folder) rather than litter it. Runs have config.toml; older hand-made ones a cycle.
    require(!std::filesystem::is_directory(folder) || std::filesystem::exists(folder / "config.toml") ||
                std::filesystem::is_directory(folder / "000") ||
                std::filesystem::is_directory(folder / "replicate_0"),
            folder.string() + ": not an lth run folder (no config.toml); give the --save folder of lth imp or lth train");
    report::ReportOptions options;
    options.plots = !*no_plots;
    const auto out = report::write_report(folder, options);
    std::cout << out.tables;
    for (const auto& note : out.results.notes) std::cerr << "note: " << note << "\n";
    for (const auto& f : out.files) std::cerr << "wrote " << f.string() << "\n";
  });
}

}  // namespace lth::cli
