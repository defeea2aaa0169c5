#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/replicates.h"
#include "io/run_layout.h"
#include "test_util.h"

namespace lth::io {
using namespace lth::report;  // the report code moved out of io (src/report)
namespace {

using nlohmann::json;
using testing::read_bytes;
using testing::ScratchDir;
using testing::write_bytes;
namespace fs = std::filesystem;

CycleResult cycle(int number, double density, double test, double val, std::optional<double> final = {}) {
  CycleResult c;
  c.cycle = number;
  c.density = density;
  c.kept = static_cast<int64_t>(density * 1000);
  c.total = 1000;
  c.test_acc["fashion-mnist"] = test;
  if (final) c.final_acc["fashion-mnist"] = *final;
  c.best_val_acc = val;
  c.selection = "hold-out of 50 training images";
  return c;
}

RunResults replicate(double shift, double control_shift) {
  RunResults r;
  r.run = "rep";
  r.selection = "hold-out of 50 training images";
  r.main.name = "main";
  r.main.cycles = {cycle(0, 1.0, 0.80 + shift, 0.81, 0.79 + shift), cycle(1, 0.8, 0.82 + shift, 0.83)};
  LineResult reinit;
  reinit.name = "reinit";
  reinit.cycles = {cycle(1, 0.8, 0.70 + control_shift, 0.71)};
  r.branches = {reinit};
  return r;
}

TEST(Replicates, SpreadIsMeanSampleStdAndRange) {
  const Spread s = spread_of({0.70, 0.74, 0.78});
  EXPECT_EQ(s.n, 3);
  EXPECT_NEAR(s.mean, 0.74, 1e-12);
  EXPECT_NEAR(s.std, 0.04, 1e-12);  // sqrt((0.0016 + 0 + 0.0016) / 2)
  EXPECT_DOUBLE_EQ(s.min, 0.70);
  EXPECT_DOUBLE_EQ(s.max, 0.78);
  const Spread one = spread_of({0.5});
  EXPECT_EQ(one.std, 0.0);
  EXPECT_THROW(spread_of({}), std::invalid_argument);
}

TEST(Replicates, AggregatesEveryLineAndCycleByHand) {
  const auto agg = aggregate("run", {replicate(0.00, 0.00), replicate(0.02, 0.01), replicate(0.04, 0.05)});
  EXPECT_EQ(agg.replicates, 3);
  EXPECT_EQ(agg.selection, "hold-out of 50 training images");
  ASSERT_EQ(agg.main.cycles.size(), 2u);
  const auto& c1 = agg.main.cycles[1];
  EXPECT_EQ(c1.cycle, 1);
  EXPECT_NEAR(c1.test_acc.at("fashion-mnist").mean, 0.84, 1e-12);
  EXPECT_NEAR(c1.test_acc.at("fashion-mnist").std, 0.02, 1e-12);
  EXPECT_NEAR(c1.test_acc.at("fashion-mnist").min, 0.82, 1e-12);
  EXPECT_NEAR(c1.test_acc.at("fashion-mnist").max, 0.86, 1e-12);
  EXPECT_NEAR(agg.main.cycles[0].final_acc.at("fashion-mnist").mean, 0.81, 1e-12);
  EXPECT_NEAR(c1.density->mean, 0.8, 1e-12);
  ASSERT_EQ(agg.branches.size(), 1u);
  EXPECT_EQ(agg.branches[0].name, "reinit");
  EXPECT_NEAR(agg.branches[0].cycles[0].test_acc.at("fashion-mnist").mean, 0.72, 1e-12);
}

TEST(Replicates, ControlsSeparatedOnlyWhenEveryReplicateIsOnOneSide) {
  // Tickets 0.82/0.84/0.86 vs reinit 0.70/0.71/0.75: separated, p = 2 / C(6, 3) = 0.1.
  auto agg = aggregate("run", {replicate(0.00, 0.00), replicate(0.02, 0.01), replicate(0.04, 0.05)});
  auto comparisons = compare_with_controls(agg);
  ASSERT_EQ(comparisons.size(), 1u);
  EXPECT_EQ(comparisons[0].branch, "reinit");
  EXPECT_EQ(comparisons[0].cycle, 1);
  EXPECT_NEAR(comparisons[0].gap, 0.84 - 0.72, 1e-12);
  const double se = std::sqrt(0.02 * 0.02 / 3 + std::pow(spread_of({0.70, 0.71, 0.75}).std, 2) / 3);
  EXPECT_NEAR(comparisons[0].gap_se, se, 1e-12);
  EXPECT_TRUE(comparisons[0].separated);
  EXPECT_NEAR(comparisons[0].p_value, 0.1, 1e-12);
  // Overlapping replicates: the control's best (0.70 + 0.13) beats the tickets' worst (0.82).
  agg = aggregate("run", {replicate(0.00, 0.13), replicate(0.02, 0.01), replicate(0.04, 0.05)});
  comparisons = compare_with_controls(agg);
  ASSERT_EQ(comparisons.size(), 1u);
  EXPECT_FALSE(comparisons[0].separated);
  EXPECT_EQ(comparisons[0].p_value, 1.0);
}

json summary_json(int number, double density, double acc, double final) {
  return {{"cycle", number},
          {"complete", true},
          {"prunable_kept", static_cast<int64_t>(density * 1000)},
          {"prunable_total", 1000},
          {"density", density},
          {"best_val_acc", acc},
          {"best_iteration", 100},
          {"selection", {{"set", "holdout"}, {"count", 50}}},
          {"test", {{"fashion-mnist", {{"acc", acc}}}}},
          {"test_final", {{"fashion-mnist", {{"acc", final}}}}}};
}

TEST(Replicates, ReportOfReplicateFoldersIsLongFormAndSaysWhatIsNoise) {
  ScratchDir dir;
  const fs::path run = dir.path() / "run";
  const double tickets[] = {0.85, 0.86, 0.84}, controls[] = {0.845, 0.80, 0.83};
  for (int r = 0; r < 3; ++r) {
    const fs::path rep = replicate_dir(run, r);
    fs::create_directories(cycle_dir(rep, 0));
    fs::create_directories(cycle_dir(rep, 1));
    fs::create_directories(branch_cycle_dir(rep, "reinit", 1));
    write_bytes(cycle_dir(rep, 0) / "summary.json", summary_json(0, 1.0, 0.88, 0.87).dump());
    write_bytes(cycle_dir(rep, 1) / "summary.json", summary_json(1, 0.8, tickets[r], 0.8).dump());
    write_bytes(branch_cycle_dir(rep, "reinit", 1) / "summary.json",
                summary_json(1, 0.8, controls[r], 0.8).dump());
  }
  ReportOptions options;
  options.plots = false;
  const auto out = write_report(run, options);
  std::istringstream csv(read_bytes(run / "results.csv"));
  std::string header, line;
  std::getline(csv, header);
  EXPECT_EQ(header, "replicate,branch,cycle,density,set,accuracy,weights");
  int rows = 0;
  bool found = false;
  while (std::getline(csv, line)) {
    ++rows;
    found = found || line == "2,reinit,001,0.8,fashion-mnist,0.83,selected";
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(rows, 3 * 3 * 3);  // replicates x (main 000, main 001, reinit 001) x (val, test, final)
  const std::string md = read_bytes(run / "report.md");
  EXPECT_NE(md.find("3 independent replicates"), std::string::npos);
  EXPECT_NE(md.find("hold-out of 50 training images"), std::string::npos);
  EXPECT_NE(md.find("within noise"), std::string::npos);  // 0.845 > 0.84: ranges overlap
  EXPECT_NE(md.find("85.00 ± 1.00 [84.00, 86.00]"), std::string::npos) << md;
  const auto j = json::parse(read_bytes(run / "results.json"));
  EXPECT_EQ(j["replicates"], 3);
  EXPECT_NEAR(j["main"][1]["test"]["fashion-mnist"]["mean"].get<double>(), 0.85, 1e-12);
  EXPECT_FALSE(j["comparisons"][0]["separated"].get<bool>());
  EXPECT_NE(out.tables.find("within noise"), std::string::npos);
  EXPECT_TRUE(fs::exists(replicate_dir(run, 0) / "report.md"));  // each replicate's own report
}

TEST(Replicates, FoldersAreFoundInNumericOrder) {
  ScratchDir dir;
  for (const char* name : {"replicate_10", "replicate_2", "replicate_x", "000", "replicate_"})
    fs::create_directories(dir.path() / name);
  const auto found = replicate_folders(dir.path());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].first, 2);
  EXPECT_EQ(found[1].first, 10);
}

}  // namespace
}  // namespace lth::io
