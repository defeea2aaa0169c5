// Instability analysis: the barrier arithmetic, two copies with the same data order, the
// rewind-point sweep, and the `lmc` branch of lth imp (report column, resuming).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "imp/lmc.h"
#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::read_file;
using testing::read_json;
using testing::run_lth;

// A ResNet-20 (batch norm: the statistics are recomputed along the path) on synthetic 8x8.
std::string lmc_config(const fs::path& dir) {
  const auto path = dir.string() + ".toml";
  std::ofstream(path) << R"([data]
name = "synthetic"
image_size = 8
holdout = 64
[model]
name = "resnet20"
[train]
batch_size = 32
lr = 0.05
eval_every = 10
eval_batch_size = 128
num_workers = 1
[imp]
rewind_iterations = 20
cycle_iterations = 20
cycles = 1
prunable = "conv"
pruning_ratio = 0.5
[run]
seed = 3
threads = 1
)";
  return path;
}

TEST(Lmc, InstabilityIsTheBarrierAboveTheMeanOfTheEnds) {
  EXPECT_NEAR(imp::instability({0.10, 0.30, 0.20}), 0.15, 1e-12);
  EXPECT_NEAR(imp::instability({0.10, 0.12, 0.18, 0.20}), 0.05, 1e-12);
  EXPECT_EQ(imp::instability({0.2, 0.2}), 0.0);
  EXPECT_NEAR(imp::instability({0.3, 0.1, 0.1}), 0.1, 1e-12);  // an end can be the maximum
  EXPECT_THROW(imp::instability({0.5}), std::invalid_argument);
}

TEST(Lmc, SameDataOrderGivesZeroInstabilityAndTheSweepCoversThePoints) {
  const auto run = fresh_dir("lmc_run"), same = fresh_dir("lmc_same"), sweep = fresh_dir("lmc_sweep");
  auto r = run_lth("imp --config " + lmc_config(run) + " --cycles 0 --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth("lmc --run " + run.string() + " --start " + (run / "000" / "init.safetensors").string() +
              " --same_order --points 5 --bn_batches 2 --train_sample 64 --save " + same.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = read_json(same / "lmc.json");
  EXPECT_EQ(j["val_instability"].get<double>(), 0.0) << j.dump();
  EXPECT_EQ(j["train_instability"].get<double>(), 0.0) << j.dump();
  ASSERT_EQ(j["alphas"].size(), 5u);
  EXPECT_EQ(j["alphas"][0].get<double>(), 0.0);
  EXPECT_EQ(j["alphas"][4].get<double>(), 1.0);
  for (const auto& e : j["val_error"]) EXPECT_EQ(e.get<double>(), j["val_error"][0].get<double>());
  EXPECT_EQ(j["selection"]["set"], "holdout");
  for (const char* f : {"lmc.csv", "lmc.png", "lmc.svg", "copy_a/last.safetensors", "copy_b/last.safetensors"})
    EXPECT_TRUE(fs::exists(same / f)) << f;
  EXPECT_NE(r.output.find("instability 0.00 pp"), std::string::npos) << r.output;

  r = run_lth("lmc --run " + run.string() + " --rewind_points 0,10,20 --points 3 --bn_batches 1 --train_sample 0 --save " +
              sweep.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto s = read_json(sweep / "sweep.json");
  ASSERT_EQ(s["points"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s["points"][i]["rewind_iteration"].get<int64_t>(), static_cast<int64_t>(10 * i));
    EXPECT_GE(s["points"][i]["val_instability"].get<double>(), 0.0);
  }
  EXPECT_TRUE(fs::exists(sweep / "instability_vs_rewind.png"));
  EXPECT_TRUE(fs::exists(sweep / "rewind_10" / "lmc.json"));
  // A point the run did not save: one line naming the file and listing what there is.
  r = run_lth("lmc --run " + run.string() + " --rewind_points 15 --save " + (sweep.string() + "_bad"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("iter_000015.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("000010"), std::string::npos) << r.output;
  for (const auto& d : {run, same, sweep}) fs::remove_all(d);
}

TEST(Lmc, ImpBranchMeasuresEveryTicketAndResumesWhereItStopped) {
  const auto straight = fresh_dir("lmc_branch"), killed = fresh_dir("lmc_branch_killed");
  const std::string args =
      " --branches lmc --set imp.cycles=1 --set imp.lmc_points=4 --set imp.lmc_bn_batches=2 --set imp.lmc_train_sample=64";
  auto r = run_lth("imp --config " + lmc_config(straight) + args + " --save " + straight.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* k : {"000", "001"}) {
    const auto j = read_json(straight / "branches" / "lmc" / k / "lmc.json");
    EXPECT_TRUE(j["complete"].get<bool>());
    EXPECT_EQ(j["alphas"].size(), 4u);  // imp.lmc_points
  }
  EXPECT_NE(read_file(straight / "report.md").find("Instability"), std::string::npos);
  EXPECT_NE(r.output.find("Instability"), std::string::npos) << r.output;  // the printed table
  // Interrupted (run.stop_after, which stops resumably inside a copy's training) and
  // resumed, the branch gives the same paths.
  const std::string config = lmc_config(killed);
  for (int attempt = 0; attempt < 12; ++attempt) {
    r = run_lth("imp --config " + config + args + " --set run.stop_after=7 --save " + killed.string());
    ASSERT_EQ(r.status, 0) << r.output;
    if (fs::exists(killed / "branches" / "lmc" / "001" / "lmc.json")) break;
  }
  r = run_lth("imp --config " + config + args + " --save " + killed.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* k : {"000", "001"}) {
    const auto a = read_json(straight / "branches" / "lmc" / k / "lmc.json");
    const auto b = read_json(killed / "branches" / "lmc" / k / "lmc.json");
    EXPECT_EQ(a["val_error"].dump(), b["val_error"].dump()) << k;
    EXPECT_EQ(a["train_error"].dump(), b["train_error"].dump()) << k;
  }
  fs::remove_all(straight);
  fs::remove_all(killed);
}

}  // namespace
}  // namespace lth
