// `lth report RUN`: rebuilds report.md, results.csv/json and the plots of a run folder.
#include <iostream>

#include "cli/commands.h"
#include "report/report.h"

namespace lth::cli {

void add_report_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "Write the results table, CSV, JSON and plots of a run");
  auto run = std::make_shared<std::string>();
  auto no_plots = std::make_shared<bool>(false);
  cmd->add_option("run", *run, "run folder (the --save folder of lth imp)")->required();
  cmd->add_flag("--no_plots", *no_plots, "skip the plots");
  cmd->callback([run, no_plots] {
    report::ReportOptions options;
    options.plots = !*no_plots;
    const auto out = report::write_report(*run, options);
    std::cout << out.tables;
    for (const auto& note : out.results.notes) std::cerr << "note: " << note << "\n";
    for (const auto& f : out.files) std::cerr << "wrote " << f.string() << "\n";
  });
}

}  // namespace lth::cli
