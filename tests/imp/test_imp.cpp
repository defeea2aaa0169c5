// `lth imp` end to end on a tiny model: the run folder, report files and plots; controls;
// resuming after SIGKILL at random points gives the same result as an uninterrupted run.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "io/checkpoint.h"
#include "test_util.h"

extern char** environ;

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::read_json;
using testing::run_lth;

// Synthetic 4-class data, LeNet on 8x8, tiny phases; checkpoints every few steps so kills
// often land inside a checkpoint write.
std::string tiny_config(const fs::path& dir) {
  const auto path = dir.string() + ".toml";
  std::ofstream(path) << R"([data]
name = "synthetic"
image_size = 8
[model]
name = "lenet300_100"
[train]
batch_size = 32
lr = 0.05
eval_every = 10
eval_batch_size = 128
ckpt_every = 3
num_workers = 1
[imp]
rewind_iterations = 40
cycle_iterations = 60
cycles = 2
prunable = "all"
pruning_ratio = 0.5
[run]
seed = 5
threads = 1
)";
  return path;
}

bool is_png(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return fs::file_size(path) > 100 && std::string(sig, 8) == "\x89PNG\r\n\x1a\n";
}

TEST(Imp, TwoCyclesAndABranchMakeTheRunFolderAndReport) {
  const auto run = fresh_dir("imp_layout");
  const auto r = run_lth("imp --config " + tiny_config(run) + " --branches reinit --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"config.toml", "metrics.jsonl", "log.txt", "iter_000000.safetensors",
                        "iter_000010.safetensors", "iter_000040.safetensors", "report.md",
                        "results.csv", "results.json", "accuracy_vs_density.svg", "layer_density.svg"}) {
    EXPECT_TRUE(fs::exists(run / f)) << f;
  }
  EXPECT_TRUE(is_png(run / "accuracy_vs_density.png"));
  EXPECT_TRUE(is_png(run / "layer_density.png"));
  double previous_density = 1.01;
  for (const char* cycle : {"000", "001", "002"}) {
    for (const char* f : {"config.toml", "metrics.jsonl", "log.txt", "init.safetensors",
                          "best_acc.safetensors", "summary.json"}) {
      EXPECT_TRUE(fs::exists(run / cycle / f)) << cycle << "/" << f;
    }
    const auto s = read_json(run / cycle / "summary.json");
    EXPECT_LT(s["density"].get<double>(), previous_density);
    previous_density = s["density"].get<double>();
    EXPECT_GT(s["test"]["synthetic"]["acc"].get<double>(), 0.4) << cycle;  // chance is 0.25
  }
  EXPECT_NEAR(previous_density, 0.25, 1e-3);
  for (const char* cycle : {"001", "002"}) {
    const auto branch = run / "branches" / "reinit" / cycle;
    ASSERT_TRUE(fs::exists(branch / "summary.json")) << branch;
    const auto main_init = io::load_checkpoint(run / cycle / "init.safetensors");
    const auto reinit = io::load_checkpoint(branch / "init.safetensors");
    for (const auto& [name, mask] : main_init.masks) {
      EXPECT_TRUE(torch::equal(mask, reinit.masks.at(name))) << name;  // same masks
      EXPECT_FALSE(torch::equal(main_init.state.at(name), reinit.state.at(name))) << name;
    }
  }
  std::ifstream report(run / "report.md");
  const std::string text((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| Cycle |"), std::string::npos) << text;
  EXPECT_NE(text.find("reinit"), std::string::npos) << text;
  EXPECT_NE(r.output.find("| 002"), std::string::npos) << r.output;  // table printed at the end

  // The same command again is a no-op resume; a conflicting config is refused.
  const auto again = run_lth("imp --config " + tiny_config(run) + " --save " + run.string());
  EXPECT_EQ(again.status, 0) << again.output;
  const auto conflict = run_lth("imp --config " + tiny_config(run) + " --set train.lr=0.2 --save " + run.string());
  EXPECT_NE(conflict.status, 0);
  EXPECT_NE(conflict.output.find("train.lr"), std::string::npos) << conflict.output;
  fs::remove_all(run);
}

// Hold-out selection and replicates: each replicate a complete run folder with a derived
// seed; the selection set recorded; the test sets scored on selected and final weights; a
// lone run with a replicate's derived seed reproduces that replicate bit for bit.
TEST(Imp, ReplicatesWithHoldoutSelectionAggregateAndReproduce) {
  const auto run = fresh_dir("imp_replicates"), lone = fresh_dir("imp_replicate_alone");
  const std::string common = " --holdout 64 --cycles 1 --set imp.cycle_iterations=30 --set imp.rewind_iterations=20";
  auto r = run_lth("imp --config " + tiny_config(run) + common +
                   " --replicates 2 --branches random_pruning --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  int64_t seeds[2] = {0, 0};
  for (int rep = 0; rep < 2; ++rep) {
    const auto dir = run / ("replicate_" + std::to_string(rep));
    for (const char* f : {"config.toml", "iter_000020.safetensors", "000/summary.json", "001/summary.json",
                          "branches/random_pruning/001/summary.json", "report.md"})
      EXPECT_TRUE(fs::exists(dir / f)) << dir << "/" << f;
    const auto s = read_json(dir / "001" / "summary.json");
    EXPECT_EQ(s["selection"]["set"], "holdout");
    EXPECT_EQ(s["selection"]["count"], 64);
    EXPECT_TRUE(s["test"].contains("synthetic")) << s.dump();
    EXPECT_TRUE(s["test_final"].contains("synthetic")) << s.dump();
    std::ifstream config(dir / "config.toml");
    for (std::string line; std::getline(config, line);)
      if (line.rfind("seed = ", 0) == 0) seeds[rep] = std::stoll(line.substr(7));
  }
  EXPECT_NE(seeds[0], seeds[1]);
  EXPECT_NE(seeds[0], 5);
  const std::string report = testing::read_file(run / "report.md");
  EXPECT_NE(report.find("2 independent replicates"), std::string::npos) << report;
  EXPECT_NE(report.find("hold-out of 64 training images"), std::string::npos) << report;
  EXPECT_NE(report.find("random_pruning"), std::string::npos) << report;
  EXPECT_EQ(testing::read_file(run / "results.csv").substr(0, 50),
            std::string("replicate,branch,cycle,density,set,accuracy,weights\n").substr(0, 50));
  EXPECT_TRUE(is_png(run / "accuracy_vs_density.png"));
  // Changing the layout of an existing run is refused.
  const auto layout = run_lth("imp --config " + tiny_config(run) + common + " --replicates 1 --save " + run.string());
  EXPECT_NE(layout.status, 0);
  EXPECT_NE(layout.output.find("run.replicates"), std::string::npos) << layout.output;

  r = run_lth("imp --config " + tiny_config(lone) + common + " --seed " + std::to_string(seeds[1]) +
              " --save " + lone.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* cycle : {"000", "001"}) {
    const auto x = io::load_checkpoint(run / "replicate_1" / cycle / "best_acc.safetensors");
    const auto y = io::load_checkpoint(lone / cycle / "best_acc.safetensors");
    for (const auto& [name, t] : x.state) EXPECT_TRUE(torch::equal(t, y.state.at(name))) << cycle << name;
    EXPECT_EQ(read_json(run / "replicate_1" / cycle / "summary.json")["test"].dump(),
              read_json(lone / cycle / "summary.json")["test"].dump());
  }
  fs::remove_all(run);
  fs::remove_all(lone);
}

// Starts `lth imp` and SIGKILLs it after `delay`; returns true if it finished first.
bool run_and_kill(const std::vector<std::string>& args, std::chrono::milliseconds delay) {
  std::vector<char*> argv;
  std::string binary = LTH_BINARY;
  argv.push_back(binary.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  const auto deadline = std::chrono::steady_clock::now() + delay;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return false;
}

// What must not change under interruption: every evaluation and test result and the masks.
nlohmann::json outcome(const fs::path& run) {
  nlohmann::json out;
  for (const auto& dir : {run, run / "000", run / "001", run / "002"}) {
    std::ifstream in(dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j["event"] == "eval") {
        out[dir.string().substr(run.string().size())].push_back(
            {j["iteration"], j["train_loss"], j["val_acc"], j["val_nll"]});
      }
    }
    if (fs::exists(dir / "summary.json")) {
      auto s = read_json(dir / "summary.json");
      out["summary" + dir.string().substr(run.string().size())] = {s["test"], s["layers"],
                                                                   s["best_val_acc"]};
    }
  }
  return out;
}

TEST(Imp, ResumingAfterSigkillAnywhereGivesTheUninterruptedResult) {
  const auto straight = fresh_dir("imp_straight"), killed = fresh_dir("imp_killed");
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(run_lth("imp --config " + tiny_config(straight) + " --save " + straight.string()).status, 0);
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  // Kill points spread over the run (rewind phase, cycles, checkpoint writes), each early
  // enough to interrupt even a resumed run; then one run to the end.
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> fraction(0.1, 0.3);
  const std::vector<std::string> args{"imp", "--config", tiny_config(killed), "--save", killed.string()};
  int kills = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto delay = std::chrono::milliseconds(static_cast<int64_t>(fraction(rng) * duration.count()));
    kills += !run_and_kill(args, delay);
  }
  EXPECT_GE(kills, 3) << "the kills should have interrupted the run several times";
  ASSERT_TRUE(run_and_kill(args, std::chrono::minutes(5)));
  const auto a = outcome(straight), b = outcome(killed);
  EXPECT_EQ(a.dump(), b.dump());
  for (const char* cycle : {"000", "001", "002"}) {
    const auto x = io::load_checkpoint(straight / cycle / "best_acc.safetensors");
    const auto y = io::load_checkpoint(killed / cycle / "best_acc.safetensors");
    for (const auto& [name, t] : x.state) EXPECT_TRUE(torch::equal(t, y.state.at(name))) << cycle << name;
    for (const auto& [name, m] : x.masks) EXPECT_TRUE(torch::equal(m, y.masks.at(name))) << cycle << name;
  }
  fs::remove_all(straight);
  fs::remove_all(killed);
}

// Every eval line of a branch cycle's metrics.jsonl.
nlohmann::json branch_evals(const fs::path& dir) {
  nlohmann::json out = nlohmann::json::array();
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "eval") out.push_back({j["iteration"], j["train_loss"], j["val_acc"], j["val_nll"]});
  }
  return out;
}

// The pruning-at-initialisation branches and the layerwise shuffle: each keeps the ticket's
// count (the shuffle: each layer's), and resumes after SIGKILL anywhere, scoring included, to
// the uninterrupted result. The main line is trained once and copied; kills land in the
// branches only.
TEST(Imp, PaiBranchesKeepTicketCountsAndResumeAfterSigkill) {
  const auto straight = fresh_dir("pai_straight"), killed = fresh_dir("pai_killed");
  const std::vector<std::string> pai{"snip",           "grasp",           "synflow",
                                     "magnitude_init", "magnitude_iter0", "shuffle_layerwise"};
  std::string branches;
  for (const auto& b : pai) branches += (branches.empty() ? "" : ",") + b;
  const std::string common = " --cycles 1 --set imp.synflow_rounds=10 --set imp.pai_batches=2";
  ASSERT_EQ(run_lth("imp --config " + tiny_config(straight) + common + " --save " + straight.string()).status, 0);
  fs::copy(straight, killed, fs::copy_options::recursive);
  const auto started = std::chrono::steady_clock::now();
  const auto r = run_lth("imp --config " + tiny_config(straight) + common + " --branches " + branches +
                         " --save " + straight.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::mt19937 rng(4321);
  std::uniform_real_distribution<double> fraction(0.1, 0.3);
  const std::vector<std::string> args{"imp", "--config", tiny_config(killed), "--cycles", "1", "--set",
                                      "imp.synflow_rounds=10", "--set", "imp.pai_batches=2",
                                      "--branches", branches, "--save", killed.string()};
  int kills = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    kills += !run_and_kill(args, std::chrono::milliseconds(static_cast<int64_t>(fraction(rng) * duration.count())));
  }
  EXPECT_GE(kills, 3) << "the kills should have interrupted the branches several times";
  ASSERT_TRUE(run_and_kill(args, std::chrono::minutes(5)));

  const auto ticket = read_json(straight / "001" / "summary.json");
  const auto ticket_masks = io::load_checkpoint(straight / "001" / "init.safetensors").masks;
  for (const auto& b : pai) {
    const auto x = straight / "branches" / b / "001", y = killed / "branches" / b / "001";
    const auto sx = read_json(x / "summary.json"), sy = read_json(y / "summary.json");
    EXPECT_EQ(sx["prunable_kept"], ticket["prunable_kept"]) << b;
    if (b == "shuffle_layerwise") {
      EXPECT_EQ(sx["layers"].dump(), ticket["layers"].dump());
    }
    EXPECT_EQ((nlohmann::json{sx["test"], sx["layers"], sx["best_val_acc"]}).dump(),
              (nlohmann::json{sy["test"], sy["layers"], sy["best_val_acc"]}).dump())
        << b;
    EXPECT_EQ(branch_evals(x).dump(), branch_evals(y).dump()) << b;
    const auto ix = io::load_checkpoint(x / "init.safetensors"), iy = io::load_checkpoint(y / "init.safetensors");
    bool same_as_ticket = true;
    for (const auto& [name, m] : ix.masks) {
      EXPECT_TRUE(torch::equal(m, iy.masks.at(name))) << b << " " << name;
      same_as_ticket = same_as_ticket && torch::equal(m, ticket_masks.at(name));
    }
    EXPECT_FALSE(same_as_ticket) << b << ": a control's mask should differ from the ticket's";
    // Scored and started at the rewind point (iteration 40), or at iteration 0 for *_iter0.
    const auto start = io::load_checkpoint(
        straight / (b == "magnitude_iter0" ? "iter_000000.safetensors" : "iter_000040.safetensors"));
    for (const auto& [name, m] : ix.masks) {
      EXPECT_TRUE(torch::equal(ix.state.at(name), start.state.at(name) * m)) << b << " " << name;
    }
    const auto bx = io::load_checkpoint(x / "best_acc.safetensors"), by = io::load_checkpoint(y / "best_acc.safetensors");
    for (const auto& [name, t] : bx.state) EXPECT_TRUE(torch::equal(t, by.state.at(name))) << b << " " << name;
  }
  const auto report = testing::read_file(straight / "report.md");
  for (const auto& b : pai) EXPECT_NE(report.find("`" + b + "`"), std::string::npos) << b;
  fs::remove_all(straight);
  fs::remove_all(killed);
}


// A ResNet-20 (batch norm, so the lmc path recomputes statistics) on synthetic 8x8, with
// checkpoints every few steps so that kills often land inside a copy's checkpoint write.
std::string bn_config(const fs::path& dir) {
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
ckpt_every = 3
num_workers = 1
[imp]
rewind_iterations = 20
cycle_iterations = 20
cycles = 1
prunable = "conv"
pruning_ratio = 0.5
lmc_points = 4
lmc_bn_batches = 2
lmc_train_sample = 64
[run]
seed = 3
threads = 1
)";
  return path;
}

// The report's main table's Instability column, one cell a cycle.
std::vector<std::string> instability_column(const std::string& report) {
  const auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|') {
        const auto first = cell.find_first_not_of(' '), last = cell.find_last_not_of(' ');
        cells.push_back(first == std::string::npos ? std::string() : cell.substr(first, last - first + 1));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    return cells;
  };
  std::vector<std::string> out;
  std::istringstream in(report);
  int column = -1;
  for (std::string line; std::getline(in, line);) {
    if (column < 0) {
      if (line.rfind("| Cycle", 0) != 0) continue;
      const auto header = split(line);
      const auto it = std::find(header.begin(), header.end(), "Instability");
      if (it == header.end()) return out;  // the main table has no such column
      column = static_cast<int>(it - header.begin());
      std::getline(in, line);  // the alignment row
      continue;
    }
    if (line.rfind("|", 0) != 0) break;
    out.push_back(split(line).at(column));
  }
  return out;
}

// The `lmc` branch resumes after SIGKILL anywhere (inside a copy's training, a checkpoint
// write, the path's evaluation) to the uninterrupted result: the same errors along every
// ticket's path, the same instabilities, the same report column. As for the PaI branches,
// the main line is trained once and copied, so the kills land in the branch only.
TEST(Imp, LmcBranchResumesAfterSigkillAnywhere) {
  const auto straight = fresh_dir("lmc_sigkill_straight"), killed = fresh_dir("lmc_sigkill_killed");
  ASSERT_EQ(run_lth("imp --config " + bn_config(straight) + " --save " + straight.string()).status, 0);
  fs::copy(straight, killed, fs::copy_options::recursive);
  const auto started = std::chrono::steady_clock::now();
  const auto r = run_lth("imp --config " + bn_config(straight) + " --branches lmc --save " + straight.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::mt19937 rng(2468);
  std::uniform_real_distribution<double> fraction(0.15, 0.35);
  const std::vector<std::string> args{"imp", "--config", bn_config(killed), "--branches", "lmc",
                                      "--save", killed.string()};
  int kills = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    kills += !run_and_kill(args, std::chrono::milliseconds(static_cast<int64_t>(fraction(rng) * duration.count())));
  }
  EXPECT_GE(kills, 3) << "the kills should have interrupted the branch several times";
  ASSERT_TRUE(run_and_kill(args, std::chrono::minutes(5)));

  for (const char* k : {"000", "001"}) {
    const auto a = read_json(straight / "branches" / "lmc" / k / "lmc.json");
    const auto b = read_json(killed / "branches" / "lmc" / k / "lmc.json");
    ASSERT_TRUE(a["complete"].get<bool>()) << k;
    ASSERT_TRUE(b["complete"].get<bool>()) << k;
    EXPECT_EQ(a["alphas"].size(), 4u) << k;
    for (const char* key : {"alphas", "val_error", "train_error", "val_instability", "train_instability", "density"})
      EXPECT_EQ(a[key].dump(), b[key].dump()) << k << " " << key;
  }
  const auto column_a = instability_column(testing::read_file(straight / "report.md"));
  const auto column_b = instability_column(testing::read_file(killed / "report.md"));
  EXPECT_EQ(column_a.size(), 2u) << testing::read_file(straight / "report.md");
  EXPECT_EQ(column_a, column_b);
  fs::remove_all(straight);
  fs::remove_all(killed);
}

}  // namespace
}  // namespace lth
