#pragma once
// Markdown tables as the reference README prints them (columns padded to their widest cell),
// and the names and number formats the tables of a single run (report.h) and of replicates
// (replicates.h) share.
#include <set>
#include <string>
#include <vector>

#include "report/run_results.h"

namespace lth::report {

// One column: its header, the markdown alignment marker of the separator row (":-:", "-:";
// empty: dashes as wide as the column, at least 3), whether cells are padded on the left,
// and one cell per row.
struct Column {
  std::string header;
  std::string alignment;
  bool right = false;
  std::vector<std::string> cells;
};

// The table, one line per row after the header and separator rows. Widths count UTF-8
// characters ("±" is one), so columns line up in a terminal.
std::string render_table(const std::vector<Column>& columns);

// Test set names of a line in column order: imagenet, imagenet-v2, imagenet-r,
// imagenet-a, imagenet-sketch, then any others sorted.
std::vector<std::string> ordered_test_sets(const std::vector<CycleResult>& cycles);
// The same order for a set of test-set names.
std::vector<std::string> ordered_set_names(std::set<std::string> names);
// Column header of a test set: "IN", "IN-V2", ... as the reference README; else the name.
std::string test_set_label(const std::string& set);
// Percent with 2 decimals, or 3 below 10 % ("76.48", "1.933"), as the reference README.
std::string format_accuracy(double fraction);

}  // namespace lth::report
