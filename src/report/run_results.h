#pragma once
// The results of a run folder (docs/ARCHITECTURE.md), read for reports.
//
// Each cycle folder (RUN/NNN/, RUN/branches/<b>/NNN/) is read from its summary.json. A
// cycle still in progress (no summary.json, or "complete": false) is reported from its
// metrics.jsonl instead: best val_acc so far, any test events already logged, and its
// density from metrics or, failing that, from the masks in its init.safetensors. So a
// report can be made while an experiment is running; such rows are marked "(running)".
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lth::report {

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

}  // namespace lth::report
