#pragma once
// `lth report RUN`: the results of a run folder (docs/ARCHITECTURE.md) as the table of
// the reference README, plus CSV, JSON and two plots.
//
// Each cycle folder (RUN/NNN/, RUN/branches/<b>/NNN/) is read from its summary.json. A
// cycle still in progress (no summary.json, or "complete": false) is reported from its
// metrics.jsonl instead: best val_acc so far, any test events already logged, and its
// density from metrics or, failing that, from the masks in its init.safetensors. So a
// report can be made while an experiment is running; such rows are marked "(running)".
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lth::io {

struct LayerCount {
  std::string name;  // state_dict name, e.g. "layer1.0.conv1.weight"
  int64_t kept = 0;
  int64_t total = 0;
};

// One IMP cycle as the report sees it. Accuracies are fractions.
struct CycleResult {
  int cycle = 0;
  bool running = false;
  std::optional<int64_t> kept;  // prunable weights kept / in total
  std::optional<int64_t> total;
  std::optional<double> density;   // kept / total
  std::vector<LayerCount> layers;  // network order; empty when unknown
  std::optional<double> best_val_acc;
  std::optional<int64_t> best_iteration;
  std::map<std::string, double> test_acc;   // test set -> accuracy of the selected weights
  std::map<std::string, double> final_acc;  // test set -> accuracy of the final iterate
  // Test sets tested with no readable image ("acc": null): no result, an empty cell and a
  // note, never 0 %.
  std::set<std::string> unreadable_sets;
  // The ticket's instability (error barrier on the selection set, a fraction) from the
  // `lmc` branch, RUN/branches/lmc/<NNN>/lmc.json; main line only.
  std::optional<double> instability;
  // What best_val_acc was measured on: "hold-out of N training images", or the test split
  // (the reference's protocol); empty when unknown.
  std::string selection;
};

// The main line ("main") or one control branch, cycles in increasing order.
struct LineResult {
  std::string name;
  std::vector<CycleResult> cycles;
};

struct RunResults {
  std::filesystem::path run;
  // The selection set of the run's cycles (CycleResult::selection of the first that says).
  std::string selection;
  LineResult main;
  std::vector<LineResult> branches;  // sorted by name
  std::vector<std::string> notes;    // what was skipped or guessed, for the user to see
};

// Reads every cycle of the run. Throws UserError for a folder that is not a run (no
// config.toml, no cycle folder). A damaged summary.json (torn, not JSON, wrong types) is
// read from the cycle's metrics.jsonl instead, with a note; an unparseable metrics.jsonl
// line (a running writer's half-written last line) is skipped with a note.
RunResults collect_run_results(const std::filesystem::path& run);

// Test set names of a line in column order: imagenet, imagenet-v2, imagenet-r,
// imagenet-a, imagenet-sketch, then any others sorted.
std::vector<std::string> ordered_test_sets(const std::vector<CycleResult>& cycles);
// The same order for a set of test-set names.
std::vector<std::string> ordered_set_names(std::set<std::string> names);
// Column header of a test set: "IN", "IN-V2", ... as the reference README; else the name.
std::string test_set_label(const std::string& set);
// Percent with 2 decimals, or 3 below 10 % ("76.48", "1.933"), as the reference README.
std::string format_accuracy(double fraction);

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
// io/replicates.h instead, and each replicate its own.
ReportOutput write_report(const std::filesystem::path& run, const ReportOptions& options = {});

}  // namespace lth::io
