#include "report/table.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace lth::report {
namespace {

constexpr const char* kKnownSets[] = {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-a",
                                      "imagenet-sketch"};
constexpr const char* kKnownLabels[] = {"IN", "IN-V2", "IN-R", "IN-A", "IN-S"};

// Characters of UTF-8 text (continuation bytes 10xxxxxx do not start one).
size_t display_width(const std::string& text) {
  size_t width = 0;
  for (const unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

std::string pad(const std::string& text, size_t width, bool right) {
  const size_t shown = display_width(text);
  const std::string fill(width > shown ? width - shown : 0, ' ');
  return right ? fill + text : text + fill;
}

}  // namespace

std::string render_table(const std::vector<Column>& columns) {
  std::vector<size_t> widths;
  for (const auto& column : columns) {
    size_t width = std::max(display_width(column.header), column.alignment.size());
    for (const auto& cell : column.cells) width = std::max(width, display_width(cell));
    widths.push_back(width);
  }
  const size_t rows = columns.empty() ? 0 : columns.front().cells.size();
  auto line = [&](auto cell_of) {
    std::string text = "|";
    for (size_t c = 0; c < columns.size(); ++c) text += " " + cell_of(c) + " |";
    return text + "\n";
  };
  std::string table = line([&](size_t c) { return pad(columns[c].header, widths[c], false); });
  table += line([&](size_t c) {
    return columns[c].alignment.empty() ? std::string(std::max<size_t>(widths[c], 3), '-')
                                        : pad(columns[c].alignment, widths[c], false);
  });
  for (size_t r = 0; r < rows; ++r)
    table += line([&](size_t c) { return pad(columns[c].cells[r], widths[c], columns[c].right); });
  return table;
}

std::string format_accuracy(double fraction) {
  const double percent = fraction * 100;
  char text[32];
  std::snprintf(text, sizeof text, percent < 10 ? "%.3f" : "%.2f", percent);
  return text;
}

std::string test_set_label(const std::string& set) {
  for (size_t i = 0; i < std::size(kKnownSets); ++i)
    if (set == kKnownSets[i]) return kKnownLabels[i];
  return set;
}

std::vector<std::string> ordered_test_sets(const std::vector<CycleResult>& cycles) {
  std::set<std::string> present;
  for (const auto& c : cycles)
    for (const auto& [set, _] : c.test_acc) present.insert(set);
  return ordered_set_names(std::move(present));
}

std::vector<std::string> ordered_set_names(std::set<std::string> present) {
  std::vector<std::string> ordered;
  for (const char* known : kKnownSets)
    if (present.erase(known) > 0) ordered.push_back(known);
  ordered.insert(ordered.end(), present.begin(), present.end());  // std::set: sorted
  return ordered;
}

}  // namespace lth::report
