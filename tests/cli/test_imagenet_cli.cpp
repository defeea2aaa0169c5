// `lth train` and `lth eval` on a generated ImageNet-layout data root (issue 3): a small
// ResNet learns above chance and every one of the five test sets is reported.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::run_lth;

TEST(ImagenetCli, TrainLearnsAndEvalReportsAllFiveSets) {
  const auto root = fresh_dir("gen_imagenet"), save = fresh_dir("gen_train");
  auto r = run_lth("make-imagenet --out " + root.string() +
                   " --classes 7 --per_class 24 --test_per_class 6 --size 48 --seed 2");  // R: 1 2 4 6, A: 6
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth("train --data_root " + root.string() +
              " --model resnet20 --image_size 32 --batch_size 32 --optim_lr 0.1 --optim_ni 90"
              " --eval_every 45 --eval_batch_size 64 --num_workers 2 --threads 1 --seed 3 --save " +
              save.string());
  ASSERT_EQ(r.status, 0) << r.output;
  // The odd files (truncated, empty) are logged and skipped, not fatal.
  EXPECT_NE(r.output.find("skipping unreadable image"), std::string::npos);
  std::ifstream in(save / "summary.json");
  const auto summary = nlohmann::json::parse(in);
  // 1000-way logits over 7 present classes: chance is at most 1/7.
  EXPECT_GT(summary["test"]["imagenet"]["acc"].get<double>(), 0.5) << summary.dump();

  const auto json = save / "eval.json";
  r = run_lth("eval --ckpt " + (save / "best_acc.safetensors").string() + " --data_root " +
              root.string() + " --image_size 32 --threads 1 --json " + json.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream ein(json);
  const auto report = nlohmann::json::parse(ein);
  for (const char* set : {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch"}) {
    ASSERT_TRUE(report["test"].contains(set)) << set << " missing from " << report.dump();
    EXPECT_GT(report["test"][set]["count"].get<int64_t>(), 0) << set;
  }
  EXPECT_DOUBLE_EQ(report["test"]["imagenet"]["acc"].get<double>(),
                   summary["test"]["imagenet"]["acc"].get<double>());
  fs::remove_all(root);
  fs::remove_all(save);
}

}  // namespace
}  // namespace lth
