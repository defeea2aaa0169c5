// `lth make-imagenet --format`, `lth make-shards`, and `lth train` / `lth imp` / `lth eval` end to
// end on a generated TFDS data dir and on WebDataset tar shards (a few seconds).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "io/tensorboard.h"
#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using shard_test::run;
using shard_test::scratch;

shard_test::Run lth(const std::string& args) { return run(std::string(LTH_BINARY) + " " + args); }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

const char* kTiny =
    " --model resnet20 --image_size 32 --batch_size 8 --optim_ni 6 --eval_every 3 --eval_batch_size 16"
    " --num_workers 2 --threads 1 --seed 3";

TEST(ShardsCli, TrainImpAndEvalOnATfdsDataDir) {
  const auto dir = scratch("cli_tfds");
  auto r = lth("make-imagenet --out " + (dir / "tfds").string() +
               " --format tfrecord --shard_size 8 --classes 4 --per_class 6 --size 40 --seed 1");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(fs::exists(dir / "tfds/imagenet2012/5.1.0/dataset_info.json")) << r.output;
  ASSERT_TRUE(fs::exists(dir / "tfds/manifest.json"));
  EXPECT_FALSE(fs::exists(dir / "tfds.folders.tmp"));

  r = lth("train --data_root " + (dir / "tfds").string() + kTiny + " --save " + (dir / "train").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skipping unreadable sample"), std::string::npos);  // the odd files
  const auto summary = read_json(dir / "train/summary.json");
  for (const char* set : {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-sketch"}) {
    EXPECT_TRUE(summary["test"].contains(set)) << set << ": " << summary.dump();
  }
  const auto events = io::read_events(io::find_events_file(dir / "train"));
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");

  r = lth("eval --ckpt " + (dir / "train/best_acc.safetensors").string() + " --data_root " +
          (dir / "tfds").string() + " --image_size 32 --threads 1 --json " + (dir / "eval.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto report = read_json(dir / "eval.json");
  EXPECT_EQ(report["test"]["imagenet"]["acc"], summary["test"]["imagenet"]["acc"]) << report.dump();
  EXPECT_GT(report["test"]["imagenet-r"]["count"].get<int64_t>(), 0);

  r = lth("imp --save " + (dir / "imp").string() + " --set data.name=imagenet --set data.root=" +
          (dir / "tfds").string() +
          " --set data.image_size=32 --set model.name=resnet20 --set train.batch_size=8"
          " --set train.eval_every=3 --set train.eval_batch_size=16 --set imp.rewind_iterations=3"
          " --set imp.cycle_iterations=3 --set imp.cycles=1 --set run.threads=1 --set run.seed=1"
          " --set data.holdout=0");
  ASSERT_EQ(r.status, 0) << r.output;
  // One events file per run folder: TensorBoard shows the rewind phase and each cycle.
  for (const char* sub : {"", "000", "001"}) {
    const auto file = io::find_events_file(dir / "imp" / sub);
    ASSERT_FALSE(file.empty()) << sub;
    bool density = false;
    for (const auto& e : io::read_events(file)) {
      for (const auto& [tag, v] : e.scalars) density |= tag == "cycle/density";
    }
    if (std::string(sub) != "") {
      EXPECT_TRUE(density) << sub;
    }
  }
  fs::remove_all(dir);
}

TEST(ShardsCli, TrainImpAndEvalOnTarShardsAndAPattern) {
  const auto dir = scratch("cli_wds");
  auto r = lth("make-imagenet --out " + (dir / "folders").string() + " --classes 4 --per_class 6 --size 40 --seed 1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = lth("make-shards --from " + (dir / "folders").string() + " --to " + (dir / "wds").string() +
          " --format webdataset --shard_size 7");
  ASSERT_EQ(r.status, 0) << r.output;
  r = lth("train --data_root " + (dir / "wds").string() + kTiny + " --tensorboard false --save " +
          (dir / "train").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(io::find_events_file(dir / "train").empty());
  EXPECT_TRUE(read_json(dir / "train/summary.json")["test"].contains("imagenet"));
  r = lth("eval --ckpt " + (dir / "train/best_acc.safetensors").string() + " --data_root " +
          (dir / "wds").string() + " --image_size 32 --threads 1 --json " + (dir / "eval.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_json(dir / "eval.json")["test"]["imagenet"]["acc"],
            read_json(dir / "train/summary.json")["test"]["imagenet"]["acc"]);
  r = lth("imp --save " + (dir / "imp").string() + " --set data.name=imagenet --set data.root=" +
          (dir / "wds").string() +
          " --set data.image_size=32 --set model.name=resnet20 --set train.batch_size=8"
          " --set train.eval_every=3 --set train.eval_batch_size=16 --set imp.rewind_iterations=3"
          " --set imp.cycle_iterations=3 --set imp.cycles=1 --set run.threads=1 --set run.seed=1"
          " --set data.holdout=0 --set run.tensorboard=false");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "imp/001/summary.json"));
  EXPECT_TRUE(io::find_events_file(dir / "imp/001").empty());
  r = lth("train --data_root '" + (dir / "wds/train/train-{000000..000004}.tar").string() + "'" + kTiny +
          " --shard_order global --save " + (dir / "pattern").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = lth("train --data_root '" + (dir / "wds/train/nothing-{0..3}.tar").string() + "'" + kTiny +
          " --save " + (dir / "bad").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  r = lth("make-shards --from " + (dir / "folders").string() + " --to " + (dir / "wds").string() +
          " --format webdataset");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("not empty"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth
