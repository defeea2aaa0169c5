// TensorBoard event files: what we write, an independent reader (tests/data_shards/tf_records.py)
// reads; what it writes, we read; resume truncation; RunLog's scalars; the off switch.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/tensorboard.h"
#include "train/run_log.h"
#include "test_util.h"

namespace lth::io {
namespace {

namespace fs = std::filesystem;
using shard_test::scratch;

nlohmann::json python_events(const fs::path& file) {
  const auto r = shard_test::python_tool("read-events " + file.string());
  EXPECT_EQ(r.status, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

TEST(TensorBoard, AnIndependentReaderReadsOurEvents) {
  const auto dir = scratch("tb");
  TensorBoardWriter w(dir);
  w.scalars({{"train/loss", 2.5}, {"val/acc", 0.125}}, 1000);
  w.scalars({{"val/acc", 0.25}}, 2000);
  ASSERT_TRUE(fs::exists(w.file()));
  EXPECT_EQ(w.file().filename().string().rfind("events.out.tfevents.", 0), 0u);
  const auto events = python_events(w.file());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["file_version"], "brain.Event:2");
  EXPECT_EQ(events[1]["step"], 1000);
  EXPECT_DOUBLE_EQ(events[1]["scalars"]["train/loss"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(events[1]["scalars"]["val/acc"].get<double>(), 0.125);
  EXPECT_EQ(events[2]["step"], 2000);
  EXPECT_GT(events[2]["wall_time"].get<double>(), 1.6e9);
  fs::remove_all(dir);
}

TEST(TensorBoard, WeReadEventsAnIndependentWriterWrote) {
  const auto dir = scratch("tbpy");
  const auto file = dir / "events.out.tfevents.1.py";
  const auto r = shard_test::python_tool("write-events " + file.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto events = read_events(file);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[3].step, 30);
  ASSERT_EQ(events[3].scalars.size(), 1u);
  EXPECT_EQ(events[3].scalars[0].first, "val/acc");
  EXPECT_FLOAT_EQ(events[3].scalars[0].second, 0.75f);
  // Our writer appends to the folder's existing file.
  TensorBoardWriter w(dir);
  EXPECT_EQ(w.file(), file);
  w.scalars({{"val/acc", 1.0}}, 40);
  EXPECT_EQ(python_events(file).size(), 5u);
  // Resume: events after step 20 go; the version event stays; a torn tail is dropped.
  {
    std::ofstream(file, std::ios::app | std::ios::binary) << "torn";
  }
  w.truncate_after(20);
  const auto kept = python_events(file);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[2]["step"], 20);
  fs::remove_all(dir);
}

TEST(TensorBoard, RunLogWritesTheRunsSeriesAndCanBeTurnedOff) {
  const auto dir = scratch("runlog");
  {
    train::RunLog log(dir / "000", true);
    log.event("start", {{"iteration", 0}});
    log.event("eval", {{"iteration", 100}, {"train_loss", 1.5}, {"val_acc", 0.5}, {"val_nll", 1.2},
                       {"lr", 0.1}, {"images_per_sec", 50.0}, {"best_acc", 0.5}});
    log.event("eval", {{"iteration", 200}, {"train_loss", 1.0}, {"val_acc", 0.6}, {"lr", 0.05}});
    log.truncate_after(100);  // as a resume from iteration 100 does
    log.event("eval", {{"iteration", 200}, {"train_loss", 0.9}, {"val_acc", 0.7}, {"lr", 0.05}});
    log.event("cycle", {{"iteration", 200}, {"cycle", 3}, {"density", 0.512}, {"best_val_acc", 0.7}});
    log.event("test", {{"set", "imagenet-v2"}, {"acc", 0.4}, {"nll", 2.0}});
  }
  const auto events = python_events(find_events_file(dir / "000"));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[1]["step"], 100);
  EXPECT_DOUBLE_EQ(events[1]["scalars"]["train/lr"].get<double>(), 0.1f);
  EXPECT_EQ(events[2]["step"], 200);
  EXPECT_NEAR(events[2]["scalars"]["train/loss"].get<double>(), 0.9, 1e-6);  // the resumed one
  EXPECT_EQ(events[3]["step"], 3);
  EXPECT_NEAR(events[3]["scalars"]["cycle/density"].get<double>(), 0.512, 1e-6);
  EXPECT_EQ(events[4]["step"], 3);
  EXPECT_NEAR(events[4]["scalars"]["test/imagenet-v2/acc"].get<double>(), 0.4, 1e-6);
  {
    train::RunLog off(dir / "001", true);
    off.set_tensorboard(false);
    off.event("eval", {{"iteration", 100}, {"val_acc", 0.5}});
  }
  EXPECT_TRUE(find_events_file(dir / "001").empty());
  EXPECT_TRUE(fs::exists(dir / "001" / "metrics.jsonl"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth::io
