// `lth eval --engine` (issue 18): on a pruned ticket made by `lth train --pruning_ratio` (one
// IMP cycle, as `lth imp` runs it), the sparse engine, auto and LibTorch's dense forward
// report the same accuracies and NLLs on every test set; a bad --engine is one line, exit 2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::run_lth;

TEST(EvalEngine, SparseAutoAndDenseAgreeOnAPrunedTicket) {
  const auto root = fresh_dir("engine_data"), save = fresh_dir("engine_runs");
  auto r = run_lth("make-imagenet --out " + root.string() +
                   " --classes 5 --per_class 16 --test_per_class 6 --size 40 --seed 4");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string common = " --data_root " + root.string() +
                             " --model resnet20 --image_size 32 --batch_size 32 --optim_lr 0.1"
                             " --optim_ni 6 --eval_every 6 --eval_batch_size 64 --num_workers 1"
                             " --threads 1 --seed 3";
  r = run_lth("train" + common + " --save " + (save / "000").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // Cycle 1 keeps 8 % of the weights: every conv layer runs sparse under --engine sparse.
  r = run_lth("train" + common + " --pruning_ratio 0.08 --previous_ckpt " +
              (save / "000" / "best_acc.safetensors").string() + " --matching_ckpt " +
              (save / "000" / "init.safetensors").string() + " --save " + (save / "001").string());
  ASSERT_EQ(r.status, 0) << r.output;

  nlohmann::json reports[3];
  const char* engines[3] = {"dense", "sparse", "auto"};
  for (int i = 0; i < 3; ++i) {
    const auto json = save / (std::string(engines[i]) + ".json");
    r = run_lth("eval --ckpt " + (save / "001" / "best_acc.safetensors").string() +
                " --data_root " + root.string() +
                // auto at one thread: at two the sparse plan does not yet pay (crossover.h)
                " --image_size 32 --threads " + (i == 2 ? "1" : "2") +
                " --batch_size 7 --sets imagenet,imagenet-r --engine " +
                engines[i] + " --json " + json.string());
    ASSERT_EQ(r.status, 0) << r.output;
    std::ifstream in(json);
    reports[i] = nlohmann::json::parse(in);
  }
  EXPECT_NE(r.output.find("layers sparse"), std::string::npos) << r.output;
  for (int i = 1; i < 3; ++i) {
    for (const auto& [set, dense] : reports[0]["test"].items()) {
      const auto& other = reports[i]["test"][set];
      EXPECT_DOUBLE_EQ(other["acc"].get<double>(), dense["acc"].get<double>())
          << engines[i] << " " << set;
      EXPECT_NEAR(other["nll"].get<double>(), dense["nll"].get<double>(),
                  1e-4 * std::max(1.0, dense["nll"].get<double>()))
          << engines[i] << " " << set;
      EXPECT_EQ(other["count"], dense["count"]);
    }
  }

  r = run_lth("eval --ckpt " + (save / "001" / "best_acc.safetensors").string() + " --data_root " +
              root.string() + " --engine fast");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.output, "lth: --engine: unknown engine 'fast' (sparse, dense or auto)\n");
  fs::remove_all(root);
  fs::remove_all(save);
}

}  // namespace
}  // namespace lth
