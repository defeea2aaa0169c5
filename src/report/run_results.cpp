#include "report/run_results.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "io/file_util.h"
#include "io/run_layout.h"
#include "io/safetensors.h"

namespace lth::report {
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
  const json summary = parse_json_text(io::read_text_file(file), label);
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
  std::istringstream lines(io::read_text_file(file));
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
    const io::SafetensorsContent content = io::read_safetensors(file);
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

// The `lmc` branch is no training line: its lmc.json files give the main cycles' instability.
constexpr const char* kStabilityFolder = "lmc";

void read_instabilities(const fs::path& folder, LineResult& main, std::vector<std::string>& notes) {
  for (auto& c : main.cycles) {
    const fs::path file = io::cycle_dir(folder, c.cycle) / "lmc.json";
    if (!fs::exists(file)) continue;
    const json j = json::parse(io::read_text_file(file), nullptr, /*allow_exceptions=*/false);
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

}  // namespace lth::report
