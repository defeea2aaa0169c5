#include "report/replicates.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "io/file_util.h"
#include "io/run_layout.h"
#include "report/plot.h"
#include "report/table.h"

namespace lth::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- aggregation ---------------------------------------------------------------------

// Values of one (line, cycle) gathered over replicates before they are summarised.
struct Gathered {
  std::vector<double> density, best_val, instability;
  std::map<std::string, std::vector<double>> test, final;
  int running = 0;
};

void gather(const LineResult& line, std::map<std::string, std::map<int, Gathered>>& into) {
  for (const auto& c : line.cycles) {
    Gathered& g = into[line.name][c.cycle];
    if (c.density) g.density.push_back(*c.density);
    if (c.best_val_acc) g.best_val.push_back(*c.best_val_acc);
    if (c.instability) g.instability.push_back(*c.instability);
    for (const auto& [set, acc] : c.test_acc) g.test[set].push_back(acc);
    for (const auto& [set, acc] : c.final_acc) g.final[set].push_back(acc);
    if (c.running) ++g.running;
  }
}

std::optional<Spread> optional_spread(const std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  return spread_of(values);
}

AggregateLine summarise(const std::string& name, const std::map<int, Gathered>& cycles) {
  AggregateLine line;
  line.name = name;
  for (const auto& [number, g] : cycles) {
    AggregateCycle c;
    c.cycle = number;
    c.density = optional_spread(g.density);
    c.best_val_acc = optional_spread(g.best_val);
    c.instability = optional_spread(g.instability);
    for (const auto& [set, values] : g.test) c.test_acc[set] = spread_of(values);
    for (const auto& [set, values] : g.final) c.final_acc[set] = spread_of(values);
    c.test_values = g.test;
    c.running = g.running;
    line.cycles.push_back(std::move(c));
  }
  return line;
}

std::vector<const AggregateLine*> all_lines(const AggregateResults& results) {
  std::vector<const AggregateLine*> lines{&results.main};
  for (const auto& branch : results.branches) lines.push_back(&branch);
  return lines;
}

std::vector<std::string> sets_of(const AggregateResults& results) {
  std::set<std::string> names;
  for (const AggregateLine* line : all_lines(results))
    for (const auto& c : line->cycles)
      for (const auto& [set, _] : c.test_acc) names.insert(set);
  return ordered_set_names(std::move(names));
}

// C(n, k) as a double (exact for the small n of replicate counts).
double binomial(int n, int k) {
  double out = 1;
  for (int i = 1; i <= k; ++i) out = out * (n - k + i) / i;
  return out;
}

// ---- text ----------------------------------------------------------------------------

// The header of the best-validation column: what it was measured on.
std::string val_label(const AggregateResults& results) {
  return results.selection.rfind("hold-out", 0) == 0 ? "Hold-out" : "Val";
}

std::string percent(double fraction) { return format_accuracy(fraction); }

// "76.48 ± 0.21 [76.30, 76.71]" (percent), or "76.48" for a single replicate.
std::string spread_cell(const Spread& s) {
  if (s.n < 2) return percent(s.mean);
  return fmt::format("{} ± {:.2f} [{}, {}]", percent(s.mean), s.std * 100, percent(s.min),
                     percent(s.max));
}

std::string cycle_label(const AggregateCycle& c, int replicates) {
  std::string label = fmt::format("{:03d}", c.cycle);
  const int n = c.test_acc.empty() ? (c.best_val_acc ? c.best_val_acc->n : 0)
                                   : c.test_acc.begin()->second.n;
  if (c.running > 0) label += fmt::format(" ({} running)", c.running);
  if (n < replicates) label += fmt::format(" (n={})", n);
  return label;
}

// Rows (the first the header) as report/table.h's columns, left-aligned, plain separators.
std::string render(const std::vector<std::vector<std::string>>& rows) {
  std::vector<Column> columns;
  for (size_t i = 0; !rows.empty() && i < rows.front().size(); ++i) {
    Column column{rows.front()[i], "", false, {}};
    for (size_t r = 1; r < rows.size(); ++r) column.cells.push_back(rows[r][i]);
    columns.push_back(std::move(column));
  }
  return render_table(columns);
}

std::string comparisons_markdown(const std::vector<Comparison>& comparisons, int replicates) {
  if (comparisons.empty()) return "";
  std::string md = "## Tickets against the controls\n\n";
  md += fmt::format(
      "Gap = mean accuracy of the tickets minus that of the control at the same cycle "
      "(percentage points), ± its standard error over the {} replicates. \"separated\" means "
      "every replicate of one side scored above every replicate of the other: with "
      "exchangeable replicates that happens by chance with probability p = 2 / C(n1+n2, n1). "
      "Anything else is **within the noise** of this many replicates.\n\n",
      replicates);
  std::vector<std::vector<std::string>> rows{{"Branch", "Cycle", "Density", "Set", "Gap (pp)", "Verdict"}};
  std::vector<std::string> within;
  double weakest = 0;  // the largest p of the separated comparisons
  for (const auto& c : comparisons) {
    if (c.separated) weakest = std::max(weakest, c.p_value);
    const std::string verdict =
        c.separated ? fmt::format("separated (p = {:.3g})", c.p_value) : "within noise";
    rows.push_back({c.branch, fmt::format("{:03d}", c.cycle), fmt::format("{:.4f}", c.density),
                    test_set_label(c.set), fmt::format("{:+.2f} ± {:.2f}", c.gap * 100, c.gap_se * 100),
                    verdict});
    if (!c.separated)
      within.push_back(fmt::format("{} at density {:.4f} ({})", c.branch, c.density, test_set_label(c.set)));
  }
  md += render(rows) + "\n";
  if (!within.empty()) {
    md += "**Within the noise:** ";
    for (size_t i = 0; i < within.size(); ++i) md += (i ? "; " : "") + within[i];
    md += ". These gaps cannot be told from replicate-to-replicate variation.\n\n";
  } else {
    md += "Every comparison above is separated.\n\n";
  }
  if (weakest > 0.05)
    md += fmt::format(
        "With {} replicates a separation is at best p = {:.3g}: weak evidence on its own "
        "(more replicates give smaller p).\n\n",
        replicates, weakest);
  return md;
}

// ---- CSV and JSON --------------------------------------------------------------------

std::string csv_number(double value) { return fmt::format("{:.10g}", value); }

std::string long_csv(const std::vector<std::pair<int, RunResults>>& replicates) {
  std::string csv = "replicate,branch,cycle,density,set,accuracy,weights\n";
  for (const auto& [r, results] : replicates) {
    std::vector<const LineResult*> lines{&results.main};
    for (const auto& b : results.branches) lines.push_back(&b);
    for (const LineResult* line : lines)
      for (const auto& c : line->cycles) {
        const std::string prefix = fmt::format("{},{},{:03d},{},", r, line->name, c.cycle,
                                               c.density ? csv_number(*c.density) : "");
        if (c.best_val_acc) csv += prefix + "val," + csv_number(*c.best_val_acc) + ",selected\n";
        for (const auto& [set, acc] : c.test_acc) csv += prefix + set + "," + csv_number(acc) + ",selected\n";
        for (const auto& [set, acc] : c.final_acc) csv += prefix + set + "," + csv_number(acc) + ",final\n";
      }
  }
  return csv;
}

json spread_json(const Spread& s) {
  return {{"n", s.n}, {"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}};
}

json line_json(const AggregateLine& line) {
  json cycles = json::array();
  for (const auto& c : line.cycles) {
    json j = {{"cycle", c.cycle}, {"running", c.running}};
    if (c.density) j["density"] = spread_json(*c.density);
    if (c.best_val_acc) j["best_val_acc"] = spread_json(*c.best_val_acc);
    if (c.instability) j["instability"] = spread_json(*c.instability);
    j["test"] = json::object();
    for (const auto& [set, s] : c.test_acc) j["test"][set] = spread_json(s);
    j["test_final"] = json::object();
    for (const auto& [set, s] : c.final_acc) j["test_final"][set] = spread_json(s);
    cycles.push_back(std::move(j));
  }
  return cycles;
}

std::string aggregate_json(const AggregateResults& results, const std::vector<Comparison>& comparisons) {
  json out = {{"run", results.run.string()}, {"replicates", results.replicates},
              {"selection", results.selection}, {"test_sets", sets_of(results)}};
  out["main"] = line_json(results.main);
  out["branches"] = json::object();
  for (const auto& b : results.branches) out["branches"][b.name] = line_json(b);
  out["comparisons"] = json::array();
  for (const auto& c : comparisons)
    out["comparisons"].push_back({{"branch", c.branch}, {"set", c.set}, {"cycle", c.cycle},
                                  {"density", c.density}, {"gap", c.gap}, {"gap_se", c.gap_se},
                                  {"separated", c.separated}, {"p_value", c.p_value}});
  out["notes"] = results.notes;
  return out.dump(2) + "\n";
}

// ---- plot ----------------------------------------------------------------------------

plot::DensityChart banded_chart(const AggregateResults& results) {
  plot::DensityChart chart;
  const auto sets = sets_of(results);
  const bool use_val = sets.empty();
  chart.title = fmt::format("Accuracy vs density: {} ({} replicates)", run_display_name(results.run),
                            results.replicates);
  chart.x_label = "Weights remaining (%, log scale, sparser to the right)";
  chart.y_label = use_val ? "Best validation accuracy (%): mean, band = min-max"
                          : "Test accuracy (%): mean, band = min-max";
  const auto lines = all_lines(results);
  for (size_t li = 0; li < lines.size(); ++li) {
    for (const std::string& set : use_val ? std::vector<std::string>{"val"} : sets) {
      plot::Series s;
      s.label = (use_val ? "Val" : test_set_label(set)) + (li == 0 ? " (tickets)" : " (" + lines[li]->name + ")");
      // Colour by line so tickets and each control stand apart; style by test set.
      s.color = static_cast<int>(li);
      const auto set_index = use_val ? 0 : std::find(sets.begin(), sets.end(), set) - sets.begin();
      s.line_style = 1 + static_cast<int>(set_index % 7);
      s.marker = static_cast<int>(li);
      for (const auto& c : lines[li]->cycles) {
        std::optional<Spread> acc = c.best_val_acc;
        if (!use_val) {
          const auto it = c.test_acc.find(set);
          acc = it == c.test_acc.end() ? std::nullopt : std::optional<Spread>(it->second);
        }
        if (!c.density || !acc || c.density->mean <= 0) continue;
        s.x.push_back(c.density->mean * 100);
        s.y.push_back(acc->mean * 100);
        s.y_low.push_back(acc->min * 100);
        s.y_high.push_back(acc->max * 100);
        chart.x_ticks.push_back(c.density->mean * 100);
      }
      if (!s.x.empty()) chart.series.push_back(std::move(s));
    }
  }
  return chart;
}

std::string markdown(const AggregateResults& results, const std::vector<Comparison>& comparisons,
                     const std::vector<fs::path>& files) {
  std::string md = "# Results: " + run_display_name(results.run) + "\n\n";
  md += fmt::format(
      "{} independent replicates (RUN/replicate_0 ... replicate_{}: rewind phase, cycles and "
      "branches, each with a seed derived from the run's). Each cell: mean ± standard deviation "
      "[min, max] over replicates of the accuracy (%) of each cycle's selected weights; "
      "\"final\" columns: the same cycle's last iterate.\n\n",
      results.replicates, results.replicates - 1);
  md += selection_sentence(results.selection);
  for (const AggregateLine* line : all_lines(results)) {
    md += line == &results.main ? "## Tickets (main line)\n\n" : "## Branch `" + line->name + "`\n\n";
    md += line->cycles.empty() ? std::string("No cycles yet.\n\n")
                               : aggregate_table(*line, results.replicates, val_label(results)) + "\n";
  }
  md += comparisons_markdown(comparisons, results.replicates);
  std::string images;
  for (const auto& file : files)
    if (file.extension() == ".png")
      images += "![" + file.stem().string() + "](" + file.filename().string() + ")\n";
  if (!images.empty()) md += "## Plots\n\nLines: means over replicates; bands: min-max.\n\n" + images + "\n";
  md += "Each replicate's own report: `replicate_<r>/report.md`.\n";
  if (!results.notes.empty()) {
    md += "\n## Notes\n\n";
    for (const auto& note : results.notes) md += "- " + note + "\n";
  }
  return md;
}

}  // namespace

std::vector<std::pair<int, fs::path>> replicate_folders(const fs::path& run) {
  std::vector<std::pair<int, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(run, ec)) return out;
  const std::string prefix = io::kReplicatePrefix;
  for (const auto& entry : fs::directory_iterator(run, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) || name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 6 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    out.emplace_back(std::stoi(digits), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Spread spread_of(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("spread_of: no values");
  Spread s;
  s.n = static_cast<int>(values.size());
  double sum = 0;
  for (const double v : values) sum += v;
  s.mean = sum / s.n;
  double squares = 0;
  for (const double v : values) squares += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(squares / (s.n - 1)) : 0.0;
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  return s;
}

AggregateResults aggregate(const fs::path& run, const std::vector<RunResults>& replicates) {
  AggregateResults out;
  out.run = run;
  out.replicates = static_cast<int>(replicates.size());
  std::map<std::string, std::map<int, Gathered>> gathered;
  std::set<std::string> branch_names;
  for (const auto& r : replicates) {
    gather(r.main, gathered);
    for (const auto& b : r.branches) {
      gather(b, gathered);
      branch_names.insert(b.name);
    }
    if (out.selection.empty()) out.selection = r.selection;
    for (const auto& note : r.notes) out.notes.push_back(run_display_name(r.run) + ": " + note);
  }
  out.main = summarise("main", gathered["main"]);
  for (const auto& name : branch_names) out.branches.push_back(summarise(name, gathered[name]));
  return out;
}

std::vector<Comparison> compare_with_controls(const AggregateResults& results) {
  std::vector<Comparison> out;
  for (const auto& branch : results.branches)
    for (const auto& bc : branch.cycles) {
      const auto mc = std::find_if(results.main.cycles.begin(), results.main.cycles.end(),
                                   [&](const AggregateCycle& c) { return c.cycle == bc.cycle; });
      if (mc == results.main.cycles.end()) continue;
      for (const auto& [set, control] : bc.test_values) {
        const auto tickets_it = mc->test_values.find(set);
        if (tickets_it == mc->test_values.end()) continue;
        const auto& tickets = tickets_it->second;
        const Spread t = spread_of(tickets), k = spread_of(control);
        Comparison c;
        c.branch = branch.name;
        c.set = set;
        c.cycle = bc.cycle;
        c.density = mc->density ? mc->density->mean : 0.0;
        c.gap = t.mean - k.mean;
        c.gap_se = std::sqrt(t.std * t.std / t.n + k.std * k.std / k.n);
        c.separated = t.n >= 2 && k.n >= 2 && (t.min > k.max || k.min > t.max);
        c.p_value = c.separated ? std::min(1.0, 2.0 / binomial(t.n + k.n, t.n)) : 1.0;
        out.push_back(c);
      }
    }
  return out;
}

std::string aggregate_table(const AggregateLine& line, int replicates, const std::string& val_label) {
  std::set<std::string> test_names, final_names;
  bool any_val = false, any_instability = false;
  for (const auto& c : line.cycles) {
    any_instability = any_instability || c.instability.has_value();
    for (const auto& [set, _] : c.test_acc) test_names.insert(set);
    for (const auto& [set, _] : c.final_acc) final_names.insert(set);
    any_val = any_val || c.best_val_acc.has_value();
  }
  const auto tests = ordered_set_names(test_names), finals = ordered_set_names(final_names);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"Cycle", "Density"};
  for (const auto& s : tests) header.push_back(test_set_label(s));
  for (const auto& s : finals) header.push_back(test_set_label(s) + " final");
  if (any_instability) header.push_back("Instability (pp)");
  if (any_val) header.push_back(val_label);
  rows.push_back(header);
  for (const auto& c : line.cycles) {
    std::vector<std::string> row{cycle_label(c, replicates),
                                 c.density ? fmt::format("{:.4f}", c.density->mean) : "-"};
    for (const auto& s : tests) {
      const auto it = c.test_acc.find(s);
      row.push_back(it == c.test_acc.end() ? "-" : spread_cell(it->second));
    }
    for (const auto& s : finals) {
      const auto it = c.final_acc.find(s);
      row.push_back(it == c.final_acc.end() ? "-" : spread_cell(it->second));
    }
    if (any_instability)
      row.push_back(!c.instability ? "-"
                    : c.instability->n < 2
                        ? fmt::format("{:.2f}", c.instability->mean * 100)
                        : fmt::format("{:.2f} ± {:.2f} [{:.2f}, {:.2f}]", c.instability->mean * 100,
                                      c.instability->std * 100, c.instability->min * 100, c.instability->max * 100));
    if (any_val) row.push_back(c.best_val_acc ? spread_cell(*c.best_val_acc) : "-");
    rows.push_back(std::move(row));
  }
  return render(rows);
}

void print_aggregate_tables(const AggregateResults& results, std::ostream& out) {
  for (const AggregateLine* line : all_lines(results)) {
    out << (line == &results.main ? fmt::format("Run {} ({} replicates)", results.run.string(), results.replicates)
                                  : "Branch " + line->name)
        << "\n"
        << (line->cycles.empty() ? std::string("No cycles yet.\n")
                                 : aggregate_table(*line, results.replicates, val_label(results)))
        << "\n";
  }
}

ReportOutput write_replicate_report(const fs::path& run, const ReportOptions& options) {
  std::vector<std::pair<int, RunResults>> per_replicate;
  std::vector<RunResults> results;
  for (const auto& [r, folder] : replicate_folders(run)) {
    per_replicate.emplace_back(r, write_report(folder, options).results);
    results.push_back(per_replicate.back().second);
  }
  require(!results.empty(), run.string() + ": no replicate folders");
  AggregateResults aggregated = aggregate(run, results);
  const auto comparisons = compare_with_controls(aggregated);
  ReportOutput output;
  output.results.run = run;
  output.results.selection = aggregated.selection;
  if (options.plots) {
    const auto chart = banded_chart(aggregated);
    if (chart.series.empty())
      aggregated.notes.push_back("accuracy_vs_density not drawn: no cycle has both a density and an accuracy yet");
    else
      plot::draw_png_and_svg(chart, run / "accuracy_vs_density", options.width, options.height,
                             output.files, aggregated.notes);
  }
  const std::pair<const char*, std::string> texts[] = {
      {"results.csv", long_csv(per_replicate)},
      {"results.json", aggregate_json(aggregated, comparisons)},
  };
  for (const auto& [name, text] : texts) {
    io::write_text_atomically(run / name, text);
    output.files.push_back(run / name);
  }
  io::write_text_atomically(run / "report.md", markdown(aggregated, comparisons, output.files));
  output.files.push_back(run / "report.md");
  std::ostringstream tables;
  print_aggregate_tables(aggregated, tables);
  std::string verdicts = comparisons_markdown(comparisons, aggregated.replicates);
  output.tables = tables.str() + verdicts;
  output.results.notes = aggregated.notes;
  return output;
}

}  // namespace lth::report
