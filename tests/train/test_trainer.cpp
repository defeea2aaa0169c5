#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <fstream>

#include "common/threads.h"
#include "data/synthetic.h"
#include "io/checkpoint.h"
#include "pruning/strategy.h"
#include "train/trainer.h"

namespace lth::train {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lth_test_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

models::ModelConfig small_conv() {
  models::ModelConfig m;
  m.name = "resnet20";  // BN, residuals and a CIFAR stem: the reference's moving parts
  m.num_classes = 4;
  m.in_channels = 1;
  m.image_size = 8;
  m.pixel_mean = {0.5};
  m.pixel_std = {0.3};
  return m;
}

data::DatasetPtr synthetic(data::Split split, int64_t size) {
  data::SyntheticConfig c;
  c.size = size;
  c.num_classes = 4;
  c.image_size = 8;
  c.seed = 3;
  return std::make_shared<data::SyntheticDataset>(c, split);
}

TrainConfig small_config(int64_t steps) {
  TrainConfig t;
  t.schedule = {0.05, steps, false, 0.1};
  t.batch_size = 16;
  t.eval_every = 10;
  t.eval_batch_size = 64;
  t.num_workers = 1;
  t.seed = 9;
  t.progress = false;
  return t;
}

TrainInputs inputs_with_half_mask() {
  TrainInputs in;
  in.net = models::make_network(small_conv(), 1);
  auto dense = pruning::dense_masks(*in.net, pruning::PrunableSet::Conv);
  in.masks = pruning::prune("random_global", {pruning::snapshot_state(*in.net), dense, 0.5, 4});
  pruning::apply_masks(*in.net, in.masks);
  in.train_set = synthetic(data::Split::Train, 128);
  in.val_set = synthetic(data::Split::Test, 64);
  return in;
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { configure_threads(1); }  // bit-exactness is per thread count
};

TEST_F(TrainerTest, PrunedWeightsAreExactlyZeroAfterTrainingAndFilesAreWritten) {
  const auto dir = fresh_dir("zeros");
  auto in = inputs_with_half_mask();
  RunLog log(dir, true);
  const auto result = run_training(small_config(30), in, log);
  EXPECT_EQ(result.iterations, 30);
  EXPECT_FALSE(result.diverged);
  const auto params = in.net->named_parameters();
  for (const auto& [name, mask] : in.masks) {
    const auto p = params[name];
    EXPECT_EQ(p.masked_select(mask == 0).abs().max().item<float>(), 0.0f) << name;
    EXPECT_GT(p.masked_select(mask == 1).abs().sum().item<float>(), 0.0f) << name;
  }
  for (const char* f : {"best_acc.safetensors", "last.safetensors", "metrics.jsonl", "log.txt"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  const auto best = io::load_checkpoint(dir / "best_acc.safetensors");
  ASSERT_TRUE(best.best_acc.has_value());
  EXPECT_DOUBLE_EQ(*best.best_acc, result.best_acc);
  EXPECT_GT(result.best_acc, 0.25 + 0.15);  // four classes: clearly above chance
  std::ifstream metrics(dir / "metrics.jsonl");
  int evals = 0;
  for (std::string line; std::getline(metrics, line);) evals += line.find("\"eval\"") != std::string::npos;
  EXPECT_EQ(evals, 3);
  fs::remove_all(dir);
}

TEST_F(TrainerTest, NanLossStopsThePhase) {
  const auto dir = fresh_dir("nan");
  auto in = inputs_with_half_mask();
  auto config = small_config(30);
  config.schedule.peak_lr = 1e30;
  config.schedule.constant = true;
  RunLog log(dir, true);
  const auto result = run_training(config, in, log);
  EXPECT_TRUE(result.diverged);
  EXPECT_EQ(result.iterations, 10);  // detected at the first evaluation
  fs::remove_all(dir);
}

TEST_F(TrainerTest, ResumingGivesBitIdenticalResults) {
  const auto straight_dir = fresh_dir("straight"), resumed_dir = fresh_dir("resumed");
  auto straight = inputs_with_half_mask();
  {
    RunLog log(straight_dir, true);
    run_training(small_config(30), straight, log);
  }
  auto config = small_config(30);
  config.stop_after = 13;  // stops mid-window, between evaluations
  auto first = inputs_with_half_mask();
  {
    RunLog log(resumed_dir, true);
    const auto r = run_training(config, first, log);
    EXPECT_TRUE(r.interrupted);
    EXPECT_EQ(r.iterations, 13);
  }
  // A new process would start from fresh objects: the checkpoint must carry everything.
  auto second = inputs_with_half_mask();
  second.net = models::make_network(small_conv(), 12345);
  config.stop_after = 0;
  {
    RunLog log(resumed_dir, true);
    run_training(config, second, log);
  }
  const auto a = io::load_checkpoint(straight_dir / "last.safetensors");
  const auto b = io::load_checkpoint(resumed_dir / "last.safetensors");
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, t] : a.state) EXPECT_TRUE(torch::equal(t, b.state.at(name))) << name;
  for (const auto& [name, t] : a.momentum) EXPECT_TRUE(torch::equal(t, b.momentum.at(name))) << name;
  EXPECT_EQ(a.best_acc, b.best_acc);
  EXPECT_EQ(a.trainer.dump(), b.trainer.dump());
  fs::remove_all(straight_dir);
  fs::remove_all(resumed_dir);
}

TEST_F(TrainerTest, MicroBatchesAccumulateToTheFullBatchGradientWithoutBatchNorm) {
  // LeNet has no BN, so micro-batching must not change the result beyond rounding.
  auto run = [](int64_t micro) {
    models::ModelConfig m;
    m.name = "lenet300_100";
    m.num_classes = 4;
    m.image_size = 8;
    TrainInputs in;
    in.net = models::make_network(m, 2);
    in.masks = pruning::dense_masks(*in.net, pruning::PrunableSet::ConvAndLinear);
    in.train_set = synthetic(data::Split::Train, 64);
    in.val_set = synthetic(data::Split::Test, 32);
    auto config = small_config(5);
    config.micro_batch = micro;
    const auto dir = fresh_dir("micro" + std::to_string(micro));
    RunLog log(dir, true);
    run_training(config, in, log);
    fs::remove_all(dir);
    return pruning::snapshot_state(*in.net);
  };
  const auto whole = run(0), chunks = run(4);
  for (const auto& [name, t] : whole) EXPECT_TRUE(torch::allclose(t, chunks.at(name), 1e-5, 1e-6)) << name;
}

}  // namespace
}  // namespace lth::train
