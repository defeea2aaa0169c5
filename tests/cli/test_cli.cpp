// End-to-end tests of the lth binary: the reference's command lines, real learning on
// Fashion-MNIST, and one clear error line for bad input.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::count_lines;
using testing::read_json;
using testing::run_lth;

const char* kFashion = "/usr/share/datasets/fashion-mnist";

std::string lenet_flags() {
  return "--data_name fashion-mnist --model lenet300_100 --prunable conv+linear --batch_size 128 "
         "--optim_lr 0.1 --eval_every 250 --eval_batch_size 1000 --num_workers 1 --seed 1 "
         "--threads 1 ";  // robust timing when other processes load the machine
}

TEST(Cli, InfoGivesTheReferenceResNet50Counts) {
  const auto r = run_lth("info --model resnet50 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["counts"]["conv"], 23454912);
  EXPECT_EQ(j["counts"]["head"], 2048000);
  EXPECT_EQ(j["counts"]["norm"], 53120);
  EXPECT_EQ(j["counts"]["total"], 25556032);
  EXPECT_EQ(j["prunable"]["conv"], 23454912);
}

// The seed README's three command lines (rewind point, dense cycle, one pruned cycle) on
// Fashion-MNIST: LeNet-300-100 learns, the mask keeps exactly 80 %, nested and top-|w|,
// and the pruned cycle starts from the rewind weights times the mask.
TEST(Cli, SeedStyleCommandLinesRunOneImpStep) {
  if (!fs::exists(kFashion)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const auto save = fresh_dir("seed_style");
  const auto rewind = save / "iter_000250.safetensors";
  auto r = run_lth("train " + lenet_flags() +
                   "--optim_ni=250 --constant_lr=true --periodic_ckpt=true --save=" + save.string());
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(fs::exists(rewind));
  r = run_lth("train " + lenet_flags() + "--optim_ni=1000 --matching_ckpt=" + rewind.string() +
              " --previous_ckpt=" + rewind.string() + " --save=" + (save / "000").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto dense = read_json(save / "000" / "summary.json");
  EXPECT_GE(dense["test"]["fashion-mnist"]["acc"].get<double>(), 0.85) << dense.dump();
  r = run_lth("train " + lenet_flags() + "--optim_ni=250 --pruning_ratio=0.8 --matching_ckpt=" +
              rewind.string() + " --previous_ckpt=" + (save / "000" / "best_acc.safetensors").string() +
              " --save=" + (save / "001").string());
  ASSERT_EQ(r.status, 0) << r.output;

  const auto previous = io::load_checkpoint(save / "000" / "best_acc.safetensors");
  const auto matching = io::load_checkpoint(rewind);
  const auto init = io::load_checkpoint(save / "001" / "init.safetensors");
  const auto trained = io::load_checkpoint(save / "001" / "best_acc.safetensors");
  int64_t kept = 0, total = 0;
  double min_kept = 1e30, max_pruned = 0;
  for (const auto& [name, mask] : init.masks) {
    kept += mask.sum().item<int64_t>();
    total += mask.numel();
    EXPECT_TRUE(torch::equal(init.state.at(name), matching.state.at(name) * mask)) << name;
    EXPECT_TRUE(torch::equal(init.masks.at(name), trained.masks.at(name))) << name;
    EXPECT_EQ(trained.state.at(name).masked_select(mask == 0).abs().max().item<float>(), 0.0f);
    const auto magnitude = previous.state.at(name).abs();
    min_kept = std::min(min_kept, magnitude.masked_select(mask == 1).min().item<double>());
    max_pruned = std::max(max_pruned, magnitude.masked_select(mask == 0).max().item<double>());
  }
  EXPECT_EQ(kept, std::llround(0.8 * total));
  EXPECT_GE(min_kept, max_pruned);
  // Unmasked parameters (biases, head) are rewound too.
  EXPECT_TRUE(torch::equal(init.state.at("fc.bias"), matching.state.at("fc.bias")));
  fs::remove_all(save);
}

void expect_one_line_error(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
}

// `lth imp` with a batch larger than its (held-out-reduced) training set: one line, and no
// run folder left behind (issue 20).
TEST(Cli, ImpRefusesABatchLargerThanTheDataBeforeWriting) {
  const auto dir = fresh_dir("imp_batch");
  const auto r = run_lth("imp --set train.batch_size=100000 --threads 1 --save " + (dir / "run").string());
  expect_one_line_error(r, "fewer than one batch of 100000");
  EXPECT_NE(r.output.find("after the hold-out"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}

// Two `lth train` started at once on one new --save: exactly one trains, the other stops
// with one line, and the folder holds one run (mkdir is the arbiter, not the early check).
TEST(Cli, TwoTrainsRacingForOneSaveFolderNeverShareIt) {
  const auto dir = fresh_dir("race") / "run";
  const auto cmd = "train --data_name synthetic --model lenet300_100 --prunable all --optim_ni 5 --threads 1 "
                   "--batch_size 64 --seed 3 --save " + dir.string();
  auto a = std::async(std::launch::async, [&] { return run_lth(cmd); });
  auto b = std::async(std::launch::async, [&] { return run_lth(cmd); });
  const auto ra = a.get(), rb = b.get();
  ASSERT_EQ((ra.status == 0) + (rb.status == 0), 1) << ra.output << "\n---\n" << rb.output;
  expect_one_line_error(ra.status == 0 ? rb : ra, "already exists");
  EXPECT_TRUE(fs::exists(dir / "last.safetensors"));
  fs::remove_all(dir.parent_path());
}

TEST(Cli, BadInputGivesOneClearLine) {
  const auto dir = fresh_dir("bad_input");
  fs::create_directories(dir);
  const auto base = "train --data_name synthetic --model lenet300_100 --prunable all --optim_ni 5 --threads 1 ";
  expect_one_line_error(run_lth(std::string(base) + "--save " + dir.string()), "already exists");
  expect_one_line_error(run_lth(std::string(base) + "--constant_lr=maybe --save " + (dir / "x").string()),
                        "--constant_lr");
  expect_one_line_error(run_lth(std::string(base) + "--matching_ckpt " + (dir / "none.safetensors").string() +
                                " --save " + (dir / "y").string()),
                        "none.safetensors");
  {
    std::ofstream truncated(dir / "torn.safetensors", std::ios::binary);
    truncated << "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":";
  }
  expect_one_line_error(run_lth(std::string(base) + "--previous_ckpt " + (dir / "torn.safetensors").string() +
                                " --save " + (dir / "z").string()),
                        "torn.safetensors");
  expect_one_line_error(run_lth(std::string(base) + "--batch_size 100000 --save " + (dir / "t").string()),
                        "fewer than one batch of 100000");
  EXPECT_FALSE(fs::exists(dir / "t"));  // said before the run folder is made
  expect_one_line_error(run_lth("train --data_name nope --save " + (dir / "w").string()), "unknown dataset 'nope'");
  expect_one_line_error(run_lth("imp --set train.lr=abc --save " + (dir / "v").string()), "train.lr");
  expect_one_line_error(run_lth("train --no_such_flag 1 --save " + (dir / "u").string()), "--no_such_flag");
  expect_one_line_error(run_lth("train --optim_ni 5"), "--save is required");
  EXPECT_FALSE(fs::exists(dir / "x"));  // nothing half-made is left behind for a flag error
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth
