#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "io/checkpoint.h"
#include "report/report.h"
#include "test_util.h"

namespace lth::io {
using namespace lth::report;  // the report code moved out of io (src/report)
namespace {

using nlohmann::json;
using testing::read_bytes;
using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr int64_t kTotal = 23454912;

json summary(int cycle, int64_t kept, std::vector<double> accs, double val) {
  const char* sets[] = {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch"};
  json test = json::object();
  for (size_t i = 0; i < accs.size(); ++i)
    test[sets[i]] = {{"acc", accs[i]}, {"nll", 1.0}, {"count", 50000}};
  return {{"cycle", cycle},
          {"complete", true},
          {"prunable_kept", kept},
          {"prunable_total", kTotal},
          {"density", static_cast<double>(kept) / kTotal},
          {"layers",
           {{{"name", "conv1.weight"}, {"kept", 9408 * kept / kTotal}, {"total", 9408}},
            {{"name", "layer1.0.conv1.weight"}, {"kept", 4096}, {"total", 4096}},
            {{"name", "layer4.2.conv3.weight"},
             {"kept", 1048576 * kept / kTotal / 2},
             {"total", 1048576}}}},
          {"best_val_acc", val},
          {"best_iteration", 47000},
          {"test", test}};
}

void write_json(const fs::path& file, const json& value) {
  fs::create_directories(file.parent_path());
  testing::write_bytes(file, value.dump(2));
}

// A run as the IMP driver leaves it part-way: cycles 000 and 001 tested, 002 training
// (metrics and its ticket only), and a control branch with one tested cycle.
fs::path make_run(const ScratchDir& dir) {
  const fs::path run = dir / "imagenet2012";
  write_json(run / "000" / "summary.json",
             summary(0, kTotal, {0.7606, 0.6369, 0.3550, 0.01933, 0.2385}, 0.7611));
  write_json(run / "001" / "summary.json",
             summary(1, 18764028, {0.7633, 0.6411, 0.3529, 0.01960, 0.2391}, 0.7640));
  fs::create_directories(run / "002");
  testing::write_bytes(run / "002" / "metrics.jsonl",
                       "{\"event\":\"start\",\"iteration\":0}\n"
                       "{\"event\":\"eval\",\"iteration\":1000,\"val_acc\":0.70}\n"
                       "{\"event\":\"eval\",\"iteration\":2000,\"val_acc\":0.7512}\n"
                       "{\"event\":\"eval\",\"iteration\":3000,\"val_acc\":0.74}\n"
                       "{\"event\":\"eval\",\"itera");  // being written right now
  Checkpoint ticket;
  ticket.state["conv1.weight"] = torch::ones({100});
  ticket.masks["conv1.weight"] = (torch::arange(100) < 64).to(torch::kFloat32);
  save_checkpoint(run / "002" / "init.safetensors", ticket);
  json branch = summary(1, 18764028, {0.7010}, 0.7020);
  write_json(run / "branches" / "reinit" / "001" / "summary.json", branch);
  return run;
}

const char* const kMainTable =
    "| Cycle         | # Params (Conv)   | IN    | IN-V2 | IN-R  | IN-A  | IN-S  | Val   |\n"
    "| :-:           | -:                | :-:   | :-:   | :-:   | :-:   | :-:   | :-:   |\n"
    "| 000           | 23454912 (1.0000) | 76.06 | 63.69 | 35.50 | 1.933 | 23.85 | 76.11 |\n"
    "| 001           | 18764028 (0.8000) | 76.33 | 64.11 | 35.29 | 1.960 | 23.91 | 76.40 |\n"
    "| 002 (running) |       64 (0.6400) | -     | -     | -     | -     | -     | 75.12 |\n";

TEST(Report, CollectsCompleteRunningAndBranchCycles) {
  ScratchDir dir;
  const RunResults results = collect_run_results(make_run(dir));
  ASSERT_EQ(results.main.cycles.size(), 3u);
  const CycleResult& running = results.main.cycles[2];
  EXPECT_TRUE(running.running);
  EXPECT_DOUBLE_EQ(*running.best_val_acc, 0.7512);
  EXPECT_EQ(*running.best_iteration, 2000);
  EXPECT_EQ(*running.kept, 64);
  EXPECT_DOUBLE_EQ(*running.density, 0.64);
  EXPECT_FALSE(results.main.cycles[1].running);
  ASSERT_EQ(results.branches.size(), 1u);
  EXPECT_EQ(results.branches[0].name, "reinit");
  EXPECT_EQ(results.branches[0].cycles.at(0).cycle, 1);
  ASSERT_EQ(results.notes.size(), 1u);  // the half-written metrics line
  EXPECT_NE(results.notes[0].find("skipped 1 unreadable line"), std::string::npos);
  EXPECT_EQ(results_table(results.main), kMainTable);
}

TEST(Report, TableMatchesTheReferenceReadme) {
  LineResult line{"main", {}};
  const struct {
    int cycle;
    int64_t kept;
    std::vector<double> accs;
  } rows[] = {{0, 23454912, {0.7606, 0.6369, 0.3550, 0.01933, 0.2385}},
              {1, 18764028, {0.7633, 0.6411, 0.3529, 0.01960, 0.2391}},
              {4, 9607294, {0.7658, 0.6402, 0.3509, 0.02373, 0.2382}}};
  const char* sets[] = {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch"};
  for (const auto& row : rows) {
    CycleResult c;
    c.cycle = row.cycle;
    c.kept = row.kept;
    c.density = static_cast<double>(row.kept) / kTotal;
    for (size_t i = 0; i < 5; ++i) c.test_acc[sets[4 - i]] = row.accs[4 - i];
    line.cycles.push_back(c);
  }
  EXPECT_EQ(results_table(line),
            "| Cycle | # Params (Conv)   | IN    | IN-V2 | IN-R  | IN-A  | IN-S  |\n"
            "| :-:   | -:                | :-:   | :-:   | :-:   | :-:   | :-:   |\n"
            "| 000   | 23454912 (1.0000) | 76.06 | 63.69 | 35.50 | 1.933 | 23.85 |\n"
            "| 001   | 18764028 (0.8000) | 76.33 | 64.11 | 35.29 | 1.960 | 23.91 |\n"
            "| 004   |  9607294 (0.4096) | 76.58 | 64.02 | 35.09 | 2.373 | 23.82 |\n");
}

TEST(Report, TestSetOrderAndAccuracyFormat) {
  CycleResult c;
  for (const char* set : {"fashion-mnist", "imagenet-sketch", "cifar10", "imagenet", "imagenet-a"})
    c.test_acc[set] = 0.5;
  EXPECT_EQ(ordered_test_sets({c}),
            (std::vector<std::string>{"imagenet", "imagenet-a", "imagenet-sketch", "cifar10",
                                      "fashion-mnist"}));
  EXPECT_EQ(test_set_label("imagenet-sketch"), "IN-S");
  EXPECT_EQ(test_set_label("fashion-mnist"), "fashion-mnist");
  EXPECT_EQ(format_accuracy(0.7648), "76.48");
  EXPECT_EQ(format_accuracy(0.01933), "1.933");
  EXPECT_EQ(format_accuracy(1.0), "100.00");
  EXPECT_EQ(format_accuracy(0.0), "0.000");
}

TEST(Report, ValColumnWhenNothingIsTested) {
  LineResult line{"main", {}};
  CycleResult c;
  c.best_val_acc = 0.9012;
  line.cycles.push_back(c);
  EXPECT_EQ(results_table(line),
            "| Cycle | # Params (Conv) | Val   |\n"
            "| :-:   | -:              | :-:   |\n"
            "| 000   |               - | 90.12 |\n");
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

TEST(Report, WritesAllFiles) {
  ScratchDir dir;
  const fs::path run = make_run(dir);
  const ReportOutput output = write_report(run);

  const std::string md = read_bytes(run / "report.md");
  EXPECT_NE(md.find(kMainTable), std::string::npos) << md;
  EXPECT_NE(md.find("## Branch `reinit`"), std::string::npos);
  EXPECT_NE(md.find("| 001   | 18764028 (0.8000) | 70.10 |"), std::string::npos) << md;
  EXPECT_NE(md.find("(running): cycle in progress"), std::string::npos);
  EXPECT_NE(md.find("![accuracy_vs_density](accuracy_vs_density.png)"), std::string::npos) << md;

  std::istringstream csv(read_bytes(run / "results.csv"));
  std::string header, row0, row1, row2, branch_row;
  std::getline(csv, header);
  std::getline(csv, row0);
  std::getline(csv, row1);
  std::getline(csv, row2);
  std::getline(csv, branch_row);
  EXPECT_EQ(header,
            "line,cycle,status,prunable_kept,prunable_total,density,best_val_acc,best_iteration,"
            "acc_imagenet,acc_imagenet-v2,acc_imagenet-r,acc_imagenet-a,acc_imagenet-sketch");
  EXPECT_EQ(
      row0,
      "main,000,complete,23454912,23454912,1,0.7611,47000,0.7606,0.6369,0.355,0.01933,0.2385");
  EXPECT_EQ(row2, "main,002,running,64,100,0.64,0.7512,2000,,,,,");
  EXPECT_EQ(branch_row, "reinit,001,complete,18764028,23454912,0.8000041953,0.702,47000,0.701,,,,");

  const json results = json::parse(read_bytes(run / "results.json"));
  EXPECT_EQ(results["main"].size(), 3u);
  EXPECT_EQ(results["main"][2]["status"], "running");
  EXPECT_EQ(results["branches"]["reinit"][0]["test"]["imagenet"], 0.701);

  for (const char* name : {"accuracy_vs_density", "layer_density"}) {
    const std::string png = read_bytes(run / (std::string(name) + ".png"));
    EXPECT_GT(png.size(), 1000u) << name;
    EXPECT_TRUE(starts_with(png, "\x89PNG\r\n\x1a\n")) << name;
    const std::string svg = read_bytes(run / (std::string(name) + ".svg"));
    EXPECT_TRUE(starts_with(svg, "<?xml") || starts_with(svg, "<svg")) << name;
    EXPECT_NE(svg.find("</svg>"), std::string::npos) << name;
    EXPECT_FALSE(fs::exists(run / (std::string(name) + ".png.tmp")));
  }
  EXPECT_EQ(output.files.size(), 7u);
}

TEST(Report, PrintsTablesForTheDriver) {
  ScratchDir dir;
  std::ostringstream out;
  print_results_tables(collect_run_results(make_run(dir)), out);
  EXPECT_NE(out.str().find(kMainTable), std::string::npos);
  EXPECT_NE(out.str().find("Branch reinit"), std::string::npos);
}

TEST(Report, EmptyAndOneCycleRuns) {
  ScratchDir dir;
  const fs::path empty = dir / "empty";
  fs::create_directories(empty);
  const ReportOutput none = write_report(empty);
  EXPECT_NE(read_bytes(empty / "report.md").find("No cycles yet."), std::string::npos);
  EXPECT_FALSE(fs::exists(empty / "accuracy_vs_density.png"));
  EXPECT_EQ(none.results.notes.size(), 2u);  // both plots skipped, said so

  const fs::path one = dir / "one";
  write_json(one / "000" / "summary.json", summary(0, kTotal, {0.76}, 0.77));
  write_report(one);
  EXPECT_TRUE(starts_with(read_bytes(one / "accuracy_vs_density.png"), "\x89PNG"));
  EXPECT_TRUE(starts_with(read_bytes(one / "layer_density.png"), "\x89PNG"));
}

TEST(Report, ErrorsNameTheFile) {
  ScratchDir dir;
  try {
    collect_run_results(dir / "absent");
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "absent").string() + ": no such run folder");
  }
  // A damaged summary costs its own figures, not the report: the note names the file and
  // the problem, and the cycle is read from its metrics.jsonl.
  fs::create_directories(dir / "run" / "000");
  testing::write_bytes(dir / "run" / "000" / "summary.json",
                       "{\"cycle\": 0, \"density\": \"half\"}");
  testing::write_bytes(dir / "run" / "000" / "metrics.jsonl",
                       "{\"event\":\"eval\",\"iteration\":10,\"val_acc\":0.25}\n");
  const RunResults results = collect_run_results(dir / "run");
  ASSERT_EQ(results.main.cycles.size(), 1u);
  EXPECT_EQ(results.main.cycles[0].best_val_acc, 0.25);
  ASSERT_EQ(results.notes.size(), 1u);
  EXPECT_NE(results.notes[0].find("summary.json: \"density\" is not a number"), std::string::npos)
      << results.notes[0];
  EXPECT_NE(results.notes[0].find("read from metrics.jsonl instead"), std::string::npos) << results.notes[0];
}

}  // namespace
}  // namespace lth::io
