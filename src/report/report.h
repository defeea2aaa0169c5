#pragma once
// `lth report RUN`: a run folder's results (read by run_results.h) as the tables of the
// reference README, plus report.md, results.csv, results.json and two plots. A run of
// several replicates is aggregated by replicates.h instead.
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "report/run_results.h"
#include "report/table.h"

namespace lth::report {

// The markdown table of one line in the reference README's layout:
//   | Cycle | # Params (Conv)   | IN    | IN-V2 | ...
// (the weights selected by best validation accuracy), then the same sets on the final
// iterate ("IN final", ...) where tested, plus a "Val" column (best validation accuracy,
// on the selection set) when the selection set is a hold-out or some cycle has no test
// results.
std::string results_table(const LineResult& line);

// The run folder's name ("runs/x/" -> "x"), for titles.
std::string run_display_name(const std::filesystem::path& run);
// "**Selection set:** ..." for report headers (empty when the selection set is unknown).
std::string selection_sentence(const std::string& selection);

// The main table, then one table per branch, for a terminal.
void print_results_tables(const RunResults& results, std::ostream& out);

struct ReportOptions {
  bool plots = true;
  int width = 900;  // plot size in pixels (PNG) / points (SVG)
  int height = 600;
};

struct ReportOutput {
  RunResults results;  // a replicated run: the run folder, its selection set and notes only
  std::vector<std::filesystem::path> files;  // everything written, in RUN/
  std::string tables;  // the results tables, for a terminal
};

// Writes RUN/report.md, results.csv, results.json, accuracy_vs_density.{png,svg} and
// layer_density.{png,svg} (each atomically). A plot that cannot be drawn (no data, or
// PLplot lacking a device) is skipped with a note in results.notes and a log line.
// A run of several replicates (RUN/replicate_<r>/) gets the aggregated report of
// report/replicates.h instead, and each replicate its own.
ReportOutput write_report(const std::filesystem::path& run, const ReportOptions& options = {});

}  // namespace lth::report
