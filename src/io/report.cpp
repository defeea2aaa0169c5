#include "io/report.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "io/file_util.h"
#include "io/plot.h"
#include "io/replicates.h"
#include "io/safetensors.h"

namespace lth::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- reading a cycle folder ----------------------------------------------------------

json parse_json_text(const std::string& text, const std::string& label) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw UserError(label + ": not valid JSON (" + e.what() + ")");
  }
}

std::optional<double> number_field(const json& object, const char* key, const std::string& label) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  if (!object[key].is_number()) throw UserError(label + ": \"" + key + "\" is not a number");
  return object[key].get<double>();
}

std::optional<int64_t> integer_field(const json& object, const char* key,
                                     const std::string& label) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  if (!object[key].is_number_integer())
    throw UserError(label + ": \"" + key + "\" is not an integer");
  return object[key].get<int64_t>();
}

std::vector<LayerCount> read_layers(const json& summary, const std::string& label) {
  std::vector<LayerCount> layers;
  if (!summary.contains("layers")) return layers;
  if (!summary["layers"].is_array()) throw UserError(label + ": \"layers\" is not an array");
  for (const auto& entry : summary["layers"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
      throw UserError(label + ": a \"layers\" entry has no name");
    LayerCount layer;
    layer.name = entry["name"].get<std::string>();
    layer.kept = integer_field(entry, "kept", label).value_or(0);
    layer.total = integer_field(entry, "total", label).value_or(0);
    layers.push_back(std::move(layer));
  }
  return layers;
}

std::map<std::string, double> read_tests(const json& summary, const std::string& label,
                                         std::set<std::string>& unreadable, const char* key = "test") {
  std::map<std::string, double> tests;
  if (!summary.contains(key)) return tests;
  if (!summary[key].is_object()) throw UserError(label + ": \"" + key + "\" is not an object");
  for (const auto& [set, result] : summary[key].items()) {
    if (result.is_object() && result.contains("acc") && result["acc"].is_null()) {
      unreadable.insert(set);  // tested, but no image could be read: no result
      continue;
    }
    const auto acc = result.is_number() ? std::optional<double>(result.get<double>())
                                        : number_field(result, "acc", label + " test " + set);
    if (!acc) throw UserError(label + ": test set '" + set + "' has no \"acc\"");
    tests[set] = *acc;
  }
  return tests;
}

// summary.json's "selection": {"set": "holdout", "count": N} or {"set": "test", "name": ...}.
std::string selection_text(const json& summary, const std::string& label) {
  if (!summary.contains("selection") || !summary["selection"].is_object()) return "";
  const json& s = summary["selection"];
  const std::string set = s.value("set", "");
  if (set == "holdout") {
    const auto count = integer_field(s, "count", label + " selection");
    return "hold-out of " + (count ? std::to_string(*count) : std::string("?")) + " training images";
  }
  if (set == "test") {
    const auto name = s.contains("name") && s["name"].is_string() ? s["name"].get<std::string>() : "";
    return "the test split" + (name.empty() ? std::string() : " (" + name + ")") +
           " itself, as the reference";
  }
  return "";
}

void read_summary(const fs::path& file, CycleResult& cycle) {
  const std::string label = file.string();
  const json summary = parse_json_text(read_text_file(file), label);
  if (!summary.is_object()) throw UserError(label + ": not a JSON object");
  if (summary.contains("complete")) {
    if (!summary["complete"].is_boolean())
      throw UserError(label + ": \"complete\" is not true/false");
    cycle.running = !summary["complete"].get<bool>();
  } else {
    cycle.running = false;  // summary.json is written when the cycle has been tested
  }
  cycle.kept = integer_field(summary, "prunable_kept", label);
  cycle.total = integer_field(summary, "prunable_total", label);
  cycle.density = number_field(summary, "density", label);
  cycle.best_val_acc = number_field(summary, "best_val_acc", label);
  cycle.best_iteration = integer_field(summary, "best_iteration", label);
  cycle.layers = read_layers(summary, label);
  cycle.test_acc = read_tests(summary, label, cycle.unreadable_sets);
  cycle.final_acc = read_tests(summary, label, cycle.unreadable_sets, "test_final");
  cycle.selection = selection_text(summary, label);
}

// What a metrics.jsonl says so far; used for cycles without a (complete) summary.
struct MetricsDigest {
  std::optional<double> best_val_acc;
  std::optional<int64_t> best_iteration;
  std::map<std::string, double> test_acc;
  std::map<std::string, double> final_acc;
  std::optional<int64_t> kept, total;
  std::optional<double> density;
  bool trained = false;  // a "cycle" event: training ended
  size_t unreadable_lines = 0;
};

template <typename T>
std::optional<T> optional_value(const json& event, const char* key) {
  if (!event.contains(key)) return std::nullopt;
  const json& value = event[key];
  if constexpr (std::is_same_v<T, double>) {
    if (value.is_number()) return value.get<double>();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (value.is_number_integer()) return value.get<int64_t>();
  } else {
    if (value.is_string()) return value.get<std::string>();
  }
  return std::nullopt;
}

void digest_event(const json& event, MetricsDigest& digest) {
  const auto kind = optional_value<std::string>(event, "event");
  if (kind == "eval") {
    const auto acc = optional_value<double>(event, "val_acc");
    if (acc && (!digest.best_val_acc || *acc > *digest.best_val_acc)) {
      digest.best_val_acc = acc;
      digest.best_iteration = optional_value<int64_t>(event, "iteration");
    }
  } else if (kind == "cycle") {
    digest.trained = true;
  } else if (kind == "test" || kind == "test_final") {
    const auto set = optional_value<std::string>(event, "set");
    const auto acc = optional_value<double>(event, "acc");
    if (set && acc) (kind == "test" ? digest.test_acc : digest.final_acc)[*set] = *acc;
  }
  // Any event may carry the cycle's sparsity (e.g. "start"); the last one wins.
  if (auto kept = optional_value<int64_t>(event, "prunable_kept")) digest.kept = kept;
  if (auto total = optional_value<int64_t>(event, "prunable_total")) digest.total = total;
  if (auto density = optional_value<double>(event, "density")) digest.density = density;
}

MetricsDigest read_metrics(const fs::path& file) {
  MetricsDigest digest;
  std::istringstream lines(read_text_file(file));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // A writer may be mid-line right now; such a line is skipped, not fatal.
    const json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_object())
      digest_event(event, digest);
    else
      ++digest.unreadable_lines;
  }
  return digest;
}

template <typename T>
void fill(std::optional<T>& target, const std::optional<T>& source) {
  if (!target && source) target = source;
}

void merge_metrics(const MetricsDigest& digest, CycleResult& cycle) {
  fill(cycle.best_val_acc, digest.best_val_acc);
  if (cycle.best_val_acc == digest.best_val_acc) fill(cycle.best_iteration, digest.best_iteration);
  fill(cycle.kept, digest.kept);
  fill(cycle.total, digest.total);
  fill(cycle.density, digest.density);
  for (const auto& [set, acc] : digest.test_acc) cycle.test_acc.emplace(set, acc);
  for (const auto& [set, acc] : digest.final_acc) cycle.final_acc.emplace(set, acc);
}

// The ticket a running cycle trains is in init.safetensors; its masks give the density.
void density_from_masks(const fs::path& file, CycleResult& cycle, std::vector<std::string>& notes) {
  try {
    const SafetensorsContent content = read_safetensors(file);
    int64_t kept = 0, total = 0;
    for (const auto& [name, tensor] : content.tensors) {
      if (name.rfind("mask/", 0) != 0) continue;
      kept += tensor.to(torch::kInt64).sum().item<int64_t>();
      total += tensor.numel();
    }
    if (total == 0) return;
    cycle.kept = kept;
    cycle.total = total;
  } catch (const UserError& e) {
    notes.push_back(std::string("density unknown: ") + e.what());
  }
}

CycleResult read_cycle(const fs::path& folder, int number, std::vector<std::string>& notes) {
  CycleResult cycle;
  cycle.cycle = number;
  cycle.running = true;
  bool damaged = false;
  if (fs::exists(folder / "summary.json")) {
    try {
      read_summary(folder / "summary.json", cycle);
    } catch (const UserError& e) {
      // One damaged file must not cost the whole report: the cycle's events say most of it.
      CycleResult fresh;
      fresh.cycle = number;
      fresh.running = true;
      cycle = fresh;
      damaged = true;
      notes.push_back(std::string(e.what()) + "; cycle " + std::to_string(number) +
                      " read from metrics.jsonl instead");
    }
  }
  if (fs::exists(folder / "metrics.jsonl")) {
    const MetricsDigest digest = read_metrics(folder / "metrics.jsonl");
    merge_metrics(digest, cycle);
    if (damaged && digest.trained && !digest.test_acc.empty()) cycle.running = false;  // it was tested
    if (digest.unreadable_lines > 0)
      notes.push_back((folder / "metrics.jsonl").string() + ": skipped " +
                      std::to_string(digest.unreadable_lines) + " unreadable line(s)");
  }
  for (const auto& set : cycle.unreadable_sets)
    notes.push_back(folder.string() + ": test set " + set + " had no readable images (no result)");
  if (!cycle.kept && !cycle.density && fs::exists(folder / "init.safetensors"))
    density_from_masks(folder / "init.safetensors", cycle, notes);
  if (!cycle.density && cycle.kept && cycle.total && *cycle.total > 0)
    cycle.density = static_cast<double>(*cycle.kept) / static_cast<double>(*cycle.total);
  return cycle;
}

bool is_cycle_folder(const fs::directory_entry& entry) {
  const std::string name = entry.path().filename().string();
  return entry.is_directory() && name.size() >= 3 && name.size() <= 6 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

LineResult read_line(const fs::path& folder, std::string name, std::vector<std::string>& notes) {
  LineResult line;
  line.name = std::move(name);
  for (const auto& entry : fs::directory_iterator(folder))
    if (is_cycle_folder(entry))
      line.cycles.push_back(
          read_cycle(entry.path(), std::stoi(entry.path().filename().string()), notes));
  std::sort(line.cycles.begin(), line.cycles.end(),
            [](const CycleResult& a, const CycleResult& b) { return a.cycle < b.cycle; });
  return line;
}

// ---- tables --------------------------------------------------------------------------

constexpr const char* kKnownSets[] = {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-a",
                                      "imagenet-sketch"};
constexpr const char* kKnownLabels[] = {"IN", "IN-V2", "IN-R", "IN-A", "IN-S"};
constexpr const char* kMissing = "-";

std::string cycle_name(int cycle) {
  char text[16];
  std::snprintf(text, sizeof text, "%03d", cycle);
  return text;
}

fs::path cycle_name_path(const fs::path& folder, int cycle) { return folder / cycle_name(cycle); }

std::string params_cell(const CycleResult& cycle) {
  if (!cycle.density) return kMissing;
  char text[64];
  std::snprintf(text, sizeof text, "(%.4f)", *cycle.density);
  return (cycle.kept ? std::to_string(*cycle.kept) : std::string(kMissing)) + " " + text;
}

bool selected_on_holdout(const std::vector<CycleResult>& cycles) {
  return std::any_of(cycles.begin(), cycles.end(),
                     [](const CycleResult& c) { return c.selection.rfind("hold-out", 0) == 0; });
}

// Best validation accuracy is worth a column where it is not a test-set figure: measured on
// a hold-out, or standing in for test results not there yet.
bool needs_val_column(const std::vector<CycleResult>& cycles) {
  return cycles.empty() || selected_on_holdout(cycles) ||
         std::any_of(cycles.begin(), cycles.end(),
                     [](const CycleResult& c) { return c.test_acc.empty(); });
}

std::vector<std::string> final_sets(const std::vector<CycleResult>& cycles) {
  std::set<std::string> present;
  for (const auto& c : cycles)
    for (const auto& [set, _] : c.final_acc) present.insert(set);
  return ordered_set_names(std::move(present));
}

struct Column {
  std::string header;
  std::string alignment;  // the markdown marker, ":-:" or "-:"
  bool right = false;     // pad cells on the left
  std::vector<std::string> cells;
};

std::string pad(const std::string& text, size_t width, bool right) {
  const std::string fill(width > text.size() ? width - text.size() : 0, ' ');
  return right ? fill + text : text + fill;
}

// Columns padded to their widest cell, as in the reference README.
std::string render_table(const std::vector<Column>& columns) {
  std::vector<size_t> widths;
  for (const auto& column : columns) {
    size_t width = std::max(column.header.size(), column.alignment.size());
    for (const auto& cell : column.cells) width = std::max(width, cell.size());
    widths.push_back(width);
  }
  const size_t rows = columns.empty() ? 0 : columns.front().cells.size();
  auto line = [&](auto cell_of) {
    std::string text = "|";
    for (size_t c = 0; c < columns.size(); ++c) text += " " + cell_of(c) + " |";
    return text + "\n";
  };
  std::string table = line([&](size_t c) { return pad(columns[c].header, widths[c], false); });
  table += line([&](size_t c) { return pad(columns[c].alignment, widths[c], false); });
  for (size_t r = 0; r < rows; ++r)
    table += line([&](size_t c) { return pad(columns[c].cells[r], widths[c], columns[c].right); });
  return table;
}

std::string accuracy_cell(const std::optional<double>& fraction) {
  return fraction ? format_accuracy(*fraction) : kMissing;
}

// ---- CSV and JSON --------------------------------------------------------------------

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(const std::optional<double>& value) {
  if (!value) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", *value);
  return text;
}

std::string csv_integer(const std::optional<int64_t>& value) {
  return value ? std::to_string(*value) : "";
}

std::vector<const LineResult*> all_lines(const RunResults& results) {
  std::vector<const LineResult*> lines{&results.main};
  for (const auto& branch : results.branches) lines.push_back(&branch);
  return lines;
}

std::vector<std::string> all_test_sets(const RunResults& results) {
  std::vector<CycleResult> cycles;
  for (const LineResult* line : all_lines(results))
    cycles.insert(cycles.end(), line->cycles.begin(), line->cycles.end());
  return ordered_test_sets(cycles);
}

std::string results_csv(const RunResults& results) {
  const std::vector<std::string> sets = all_test_sets(results);
  std::vector<CycleResult> all_cycles;
  for (const LineResult* line : all_lines(results))
    all_cycles.insert(all_cycles.end(), line->cycles.begin(), line->cycles.end());
  const std::vector<std::string> finals = final_sets(all_cycles);
  std::string csv =
      "line,cycle,status,prunable_kept,prunable_total,density,best_val_acc,best_iteration";
  for (const auto& set : sets) csv += "," + csv_field("acc_" + set);
  for (const auto& set : finals) csv += "," + csv_field("final_acc_" + set);
  csv += "\n";
  for (const LineResult* line : all_lines(results))
    for (const auto& c : line->cycles) {
      csv += csv_field(line->name) + "," + cycle_name(c.cycle) + "," +
             (c.running ? "running" : "complete") + "," + csv_integer(c.kept) + "," +
             csv_integer(c.total) + "," + csv_number(c.density) + "," + csv_number(c.best_val_acc) +
             "," + csv_integer(c.best_iteration);
      for (const auto& [accs, names] : {std::pair{&c.test_acc, &sets}, std::pair{&c.final_acc, &finals}})
        for (const auto& set : *names) {
          auto it = accs->find(set);
          csv += "," + (it == accs->end() ? std::string() : csv_number(it->second));
        }
      csv += "\n";
    }
  return csv;
}

template <typename T>
void put(json& object, const char* key, const std::optional<T>& value) {
  if (value) object[key] = *value;
}

json cycle_json(const CycleResult& c) {
  json out = {{"cycle", c.cycle}, {"status", c.running ? "running" : "complete"}};
  put(out, "prunable_kept", c.kept);
  put(out, "prunable_total", c.total);
  put(out, "density", c.density);
  put(out, "best_val_acc", c.best_val_acc);
  put(out, "best_iteration", c.best_iteration);
  out["test"] = c.test_acc;
  out["test_final"] = c.final_acc;
  put(out, "instability", c.instability);
  return out;
}

json line_json(const LineResult& line) {
  json cycles = json::array();
  for (const auto& c : line.cycles) cycles.push_back(cycle_json(c));
  return cycles;
}

std::string results_json(const RunResults& results) {
  json out = {{"run", results.run.string()}, {"test_sets", all_test_sets(results)},
              {"selection", results.selection}};
  out["main"] = line_json(results.main);
  out["branches"] = json::object();
  for (const auto& branch : results.branches) out["branches"][branch.name] = line_json(branch);
  out["notes"] = results.notes;
  return out.dump(2) + "\n";
}

// ---- plots ---------------------------------------------------------------------------

// One series per (line, test set): colour = test set, line style and marker = line.
void add_line_series(const LineResult& line, size_t line_index,
                     const std::vector<std::string>& sets, plot::DensityChart& chart) {
  const std::vector<std::string> own = ordered_test_sets(line.cycles);
  const bool use_val = own.empty();
  for (const std::string& set : use_val ? std::vector<std::string>{"val"} : own) {
    plot::Series series;
    series.label =
        (use_val ? "Val" : test_set_label(set)) + (line_index == 0 ? "" : " (" + line.name + ")");
    series.color = static_cast<int>(std::find(sets.begin(), sets.end(), set) - sets.begin());
    series.line_style = line_index == 0 ? 1 : 3 + static_cast<int>((line_index - 1) % 6);
    series.marker = static_cast<int>(line_index);
    for (const auto& c : line.cycles) {
      const auto it = c.test_acc.find(set);
      const std::optional<double> acc =
          use_val ? c.best_val_acc
                  : (it == c.test_acc.end() ? std::nullopt : std::optional<double>(it->second));
      if (!c.density || !acc || *c.density <= 0) continue;
      series.x.push_back(*c.density * 100);
      series.y.push_back(*acc * 100);
      chart.x_ticks.push_back(*c.density * 100);
    }
    if (!series.x.empty()) chart.series.push_back(std::move(series));
  }
}

void add_dense_references(const LineResult& main, const std::vector<std::string>& sets,
                          plot::DensityChart& chart) {
  if (main.cycles.empty() || main.cycles.front().cycle != 0) return;
  const CycleResult& dense = main.cycles.front();
  const std::vector<std::string> own = ordered_test_sets(main.cycles);
  for (const auto& set : own)
    if (auto it = dense.test_acc.find(set); it != dense.test_acc.end())
      chart.references.push_back(
          {it->second * 100,
           static_cast<int>(std::find(sets.begin(), sets.end(), set) - sets.begin())});
  if (own.empty() && dense.best_val_acc)
    chart.references.push_back({*dense.best_val_acc * 100, static_cast<int>(sets.size())});
}

plot::DensityChart density_chart(const RunResults& results) {
  plot::DensityChart chart;
  const std::vector<std::string> sets = all_test_sets(results);
  const bool any_tests = !sets.empty();
  chart.title = "Accuracy vs density: " + run_display_name(results.run);
  chart.x_label = "Weights remaining (%, log scale, sparser to the right)";
  chart.y_label = any_tests ? "Test accuracy (%)" : "Best validation accuracy (%)";
  chart.reference_label = "dense (cycle 000)";
  std::vector<std::string> colour_keys = sets;
  colour_keys.push_back("val");
  const auto lines = all_lines(results);
  for (size_t i = 0; i < lines.size(); ++i) add_line_series(*lines[i], i, colour_keys, chart);
  add_dense_references(results.main, colour_keys, chart);
  return chart;
}

std::string short_layer_name(const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size());
  return name;
}

std::optional<plot::BarChart> layer_chart(const LineResult& main) {
  auto last = std::find_if(main.cycles.rbegin(), main.cycles.rend(),
                           [](const CycleResult& c) { return !c.layers.empty(); });
  if (last == main.cycles.rend()) return std::nullopt;
  plot::BarChart chart;
  chart.title = "Per-layer density, cycle " + cycle_name(last->cycle);
  chart.y_label = "Weights kept (%)";
  int64_t kept = 0, total = 0;
  for (const auto& layer : last->layers) {
    chart.labels.push_back(short_layer_name(layer.name));
    chart.values.push_back(layer.total > 0 ? 100.0 * static_cast<double>(layer.kept) /
                                                 static_cast<double>(layer.total)
                                           : 0.0);
    kept += layer.kept;
    total += layer.total;
  }
  const double overall = last->density.value_or(
      total > 0 ? static_cast<double>(kept) / static_cast<double>(total) : 0.0);
  char label[64];
  std::snprintf(label, sizeof label, "overall %.2f %%", overall * 100);
  chart.reference = overall * 100;
  chart.reference_label = label;
  return chart;
}

template <typename Chart>
void draw_both_formats(const Chart& chart, const fs::path& stem, const ReportOptions& options,
                       ReportOutput& output) {
  plot::draw_png_and_svg(chart, stem, options.width, options.height, output.files,
                         output.results.notes);
}

void write_plots(const ReportOptions& options, ReportOutput& output) {
  const fs::path& run = output.results.run;
  const plot::DensityChart accuracy = density_chart(output.results);
  if (accuracy.series.empty())
    output.results.notes.push_back(
        "accuracy_vs_density not drawn: no cycle has both a density and an accuracy yet");
  else
    draw_both_formats(accuracy, run / "accuracy_vs_density", options, output);
  const auto layers = layer_chart(output.results.main);
  if (!layers)
    output.results.notes.push_back(
        "layer_density not drawn: no summary.json lists per-layer counts yet");
  else
    draw_both_formats(*layers, run / "layer_density", options, output);
}

// ---- report.md -----------------------------------------------------------------------

bool has_running(const LineResult& line) {
  return std::any_of(line.cycles.begin(), line.cycles.end(),
                     [](const CycleResult& c) { return c.running; });
}

std::string markdown_report(const ReportOutput& output);

}  // namespace

std::string run_display_name(const fs::path& run) {
  const fs::path clean = run.lexically_normal();
  const std::string name = clean.filename().string();
  return name.empty() ? clean.parent_path().filename().string() : name;
}

std::string selection_sentence(const std::string& selection) {
  if (selection.empty()) return "";
  std::string text = "**Selection set:** best_acc (and the next cycle's mask) chosen on " + selection + ".";
  if (selection.rfind("hold-out", 0) != 0)
    text += " The selected weights' figures on that set are optimistic: they were picked on it; "
            "the \"final\" columns are not.";
  return text + "\n\n";
}

namespace {

std::string markdown_report(const ReportOutput& output) {
  const RunResults& results = output.results;
  std::string md = "# Results: " + run_display_name(results.run) + "\n\n";
  md +=
      "Accuracy (%) on each test set of every IMP cycle's best-validation weights (columns "
      "marked \"final\": the same cycle's last iterate). "
      "\"# Params (Conv)\" counts the prunable weights kept, with the fraction kept in "
      "parentheses.\n\n";
  md += selection_sentence(results.selection);
  if (std::any_of(results.main.cycles.begin(), results.main.cycles.end(),
                  [](const CycleResult& c) { return c.instability.has_value(); }))
    md += "**Instability** (the `lmc` branch): the largest error on the linear path between two "
          "copies trained from the cycle's ticket with different data orders, minus the mean of "
          "the two ends, in percentage points on the selection set; ~0 means the ticket is "
          "stable to SGD noise.\n\n";
  bool running = false;
  for (const LineResult* line : all_lines(results)) {
    if (line != &results.main) md += "## Branch `" + line->name + "`\n\n";
    md += line->cycles.empty() ? std::string("No cycles yet.\n\n") : results_table(*line) + "\n";
    running = running || has_running(*line);
  }
  if (running)
    md +=
        "(running): cycle in progress; its figures are those logged so far "
        "(Val = best validation accuracy yet).\n\n";
  std::string images;
  for (const auto& file : output.files)
    if (file.extension() == ".png")
      images += "![" + file.stem().string() + "](" + file.filename().string() + ")\n";
  if (!images.empty()) md += "## Plots\n\n" + images + "\n";
  if (!results.notes.empty()) {
    md += "## Notes\n\n";
    for (const auto& note : results.notes) md += "- " + note + "\n";
  }
  return md;
}

}  // namespace

// ---- public API ----------------------------------------------------------------------

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

std::string results_table(const LineResult& line) {
  std::vector<Column> columns;
  columns.push_back({"Cycle", ":-:", false, {}});
  columns.push_back({"# Params (Conv)", "-:", true, {}});
  for (const auto& c : line.cycles) {
    columns[0].cells.push_back(cycle_name(c.cycle) + (c.running ? " (running)" : ""));
    columns[1].cells.push_back(params_cell(c));
  }
  for (const auto& set : ordered_test_sets(line.cycles)) {
    Column column{test_set_label(set), ":-:", false, {}};
    for (const auto& c : line.cycles) {
      auto it = c.test_acc.find(set);
      column.cells.push_back(it == c.test_acc.end() ? kMissing : format_accuracy(it->second));
    }
    columns.push_back(std::move(column));
  }
  for (const auto& set : final_sets(line.cycles)) {
    Column column{test_set_label(set) + " final", ":-:", false, {}};
    for (const auto& c : line.cycles) {
      auto it = c.final_acc.find(set);
      column.cells.push_back(it == c.final_acc.end() ? kMissing : format_accuracy(it->second));
    }
    columns.push_back(std::move(column));
  }
  if (std::any_of(line.cycles.begin(), line.cycles.end(), [](const CycleResult& c) { return c.instability.has_value(); })) {
    Column column{"Instability", ":-:", false, {}};
    for (const auto& c : line.cycles) {
      char text[32];
      std::snprintf(text, sizeof text, "%.2f", c.instability.value_or(0) * 100);
      column.cells.push_back(c.instability ? std::string(text) : kMissing);
    }
    columns.push_back(std::move(column));
  }
  if (needs_val_column(line.cycles)) {
    Column column{selected_on_holdout(line.cycles) ? "Hold-out" : "Val", ":-:", false, {}};
    for (const auto& c : line.cycles) column.cells.push_back(accuracy_cell(c.best_val_acc));
    columns.push_back(std::move(column));
  }
  return render_table(columns);
}

namespace {

// The `lmc` branch is no training line: its lmc.json files give the main cycles' instability.
constexpr const char* kStabilityFolder = "lmc";

void read_instabilities(const fs::path& folder, LineResult& main, std::vector<std::string>& notes) {
  for (auto& c : main.cycles) {
    const fs::path file = cycle_name_path(folder, c.cycle) / "lmc.json";
    if (!fs::exists(file)) continue;
    const json j = json::parse(read_text_file(file), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.value("complete", false) || !j.contains("val_instability") ||
        !j["val_instability"].is_number()) {
      notes.push_back(file.string() + ": incomplete or unreadable; instability left out");
      continue;
    }
    c.instability = j["val_instability"].get<double>();
  }
}

RunResults collect_unchecked(const fs::path& run) {
  RunResults results;
  results.run = run;
  results.main = read_line(run, "main", results.notes);
  for (const auto& c : results.main.cycles)
    if (results.selection.empty()) results.selection = c.selection;
  const fs::path branches = run / "branches";
  if (fs::is_directory(branches)) {
    for (const auto& entry : fs::directory_iterator(branches))
      if (entry.is_directory() && entry.path().filename() == kStabilityFolder)
        read_instabilities(entry.path(), results.main, results.notes);
      else if (entry.is_directory())
        results.branches.push_back(
            read_line(entry.path(), entry.path().filename().string(), results.notes));
    std::sort(results.branches.begin(), results.branches.end(),
              [](const LineResult& a, const LineResult& b) { return a.name < b.name; });
  }
  return results;
}

}  // namespace

RunResults collect_run_results(const fs::path& run) {
  if (!fs::is_directory(run)) throw UserError(run.string() + ": no such run folder");
  try {
    return collect_unchecked(run);
  } catch (const fs::filesystem_error& e) {  // e.g. an unreadable folder
    throw UserError(e.path1().string() + ": " + e.code().message());
  }
}

void print_results_tables(const RunResults& results, std::ostream& out) {
  for (const LineResult* line : all_lines(results)) {
    out << (line == &results.main ? "Run " + results.run.string() : "Branch " + line->name) << "\n";
    out << (line->cycles.empty() ? std::string("No cycles yet.\n") : results_table(*line)) << "\n";
  }
}

ReportOutput write_report(const fs::path& run, const ReportOptions& options) {
  if (!replicate_folders(run).empty()) return write_replicate_report(run, options);
  ReportOutput output;
  output.results = collect_run_results(run);
  std::ostringstream tables;
  print_results_tables(output.results, tables);
  output.tables = tables.str();
  if (options.plots) write_plots(options, output);
  const std::pair<const char*, std::string> texts[] = {
      {"results.csv", results_csv(output.results)},
      {"results.json", results_json(output.results)},
  };
  for (const auto& [name, text] : texts) {
    write_text_atomically(run / name, text);
    output.files.push_back(run / name);
  }
  write_text_atomically(run / "report.md", markdown_report(output));
  output.files.push_back(run / "report.md");
  for (const auto& note : output.results.notes) spdlog::warn("report: {}", note);
  return output;
}

}  // namespace lth::io
