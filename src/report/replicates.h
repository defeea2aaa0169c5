#pragma once
// The report of a run of several replicates (run.replicates = N): RUN/replicate_0 ...
// RUN/replicate_<N-1>, each a complete run folder with a seed derived from the run's. Per
// line (main, each branch) and cycle it gives the mean, standard deviation (n - 1) and
// min-max over replicates of every accuracy; the plot draws each mean with a band spanning
// the replicates' min-max (as the lottery-ticket papers draw their error bars); and every
// control branch is compared with the tickets at each density, saying plainly where the
// difference is within the spread of the replicates.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report/report.h"

namespace lth::report {

// (replicate number, folder), sorted by number; empty when `run` has no replicate folders.
std::vector<std::pair<int, std::filesystem::path>> replicate_folders(const std::filesystem::path& run);

struct Spread {
  int n = 0;
  double mean = 0;
  double std = 0;  // sample standard deviation (n - 1 in the denominator); 0 when n < 2
  double min = 0;
  double max = 0;
};
// Throws std::invalid_argument on an empty list.
Spread spread_of(const std::vector<double>& values);

// One cycle of one line across replicates. Sets missing in some replicate are aggregated
// over the replicates that have them (Spread::n says how many).
struct AggregateCycle {
  int cycle = 0;
  std::optional<Spread> density;
  std::optional<Spread> best_val_acc;
  std::optional<Spread> instability;         // the `lmc` branch's, where measured
  std::map<std::string, Spread> test_acc;   // selected weights
  std::map<std::string, Spread> final_acc;  // final iterate
  std::map<std::string, std::vector<double>> test_values;  // per replicate, for comparisons
  int running = 0;  // replicates whose cycle is still in progress
};

struct AggregateLine {
  std::string name;
  std::vector<AggregateCycle> cycles;  // increasing cycle numbers
};

struct AggregateResults {
  std::filesystem::path run;
  int replicates = 0;
  std::string selection;
  AggregateLine main;
  std::vector<AggregateLine> branches;  // sorted by name
  std::vector<std::string> notes;
};

AggregateResults aggregate(const std::filesystem::path& run, const std::vector<RunResults>& replicates);

// A control against the tickets at one cycle and test set.
struct Comparison {
  std::string branch, set;
  int cycle = 0;
  double density = 0;    // mean density of the tickets
  double gap = 0;        // mean(tickets) - mean(control), as a fraction
  double gap_se = 0;     // standard error of that difference (Welch)
  bool separated = false;  // every replicate of one side above every one of the other
  double p_value = 1;    // of that separation under exchangeable replicates: 2 / C(n1+n2, n1)
};
std::vector<Comparison> compare_with_controls(const AggregateResults& results);

// "| Cycle | Density | IN mean ± std [min, max] | ..." for one line; `val_label` heads the
// best-validation column ("Hold-out" or "Val").
std::string aggregate_table(const AggregateLine& line, int replicates,
                            const std::string& val_label = "Val");

// Writes RUN/report.md, results.csv (long form: replicate, branch, cycle, density, set,
// accuracy, weights), results.json and accuracy_vs_density.{png,svg} with bands.
ReportOutput write_replicate_report(const std::filesystem::path& run, const ReportOptions& options);

// Tables of every line for a terminal.
void print_aggregate_tables(const AggregateResults& results, std::ostream& out);

}  // namespace lth::report
