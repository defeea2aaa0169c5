// The reference's own checkpoints through the lth binary: `lth eval` on a reference .ckpt,
// `lth convert` both ways (bit-identical round trip), a reference run continued by
// `lth train`, and hostile files. The reference files and the expected numbers come from
// tests/io/flax_reference.py (Python, NumPy, python3-msgpack; no Flax, no JAX).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::run_command;
using testing::count_lines;
using testing::read_json;
using testing::run_lth;

const std::string kScript = std::string(LTH_SOURCE_DIR) + "/tests/io/flax_reference.py";

testing::CommandResult reference(const std::string& args) {
  return run_command("/usr/bin/python3 '" + kScript + "' " + args);
}

// `lth eval` on the reference's file gives the reference's top-1 and NLL (from its logits,
// computed by the independent forward pass with SAME padding and its pixel statistics).
// 1000 classes: lth eval scores against the ImageNet label space.
TEST(Convert, EvalOnAReferenceCheckpointMatchesTheReferenceForwardPass) {
  struct Case {
    std::string model;
    int stem;
    int size;
  };
  for (const Case& c : {Case{"resnet18", 7, 72}, Case{"resnet20", 3, 32}}) {
    const auto dir = fresh_dir("convert_eval_" + c.model);
    const auto arrays = dir / "data" / ("Ref_x" + std::to_string(c.size));
    fs::create_directories(arrays);
    auto r = reference("write '" + (dir / "best_acc.ckpt").string() + "' --model " + c.model +
                       " --stem " + std::to_string(c.stem) + " --classes 1000 --images 6 --size " +
                       std::to_string(c.size) + " --out '" + dir.string() + "'");
    ASSERT_EQ(r.status, 0) << r.output;
    fs::rename(dir / "images.npy", arrays / "test_images.npy");
    fs::rename(dir / "labels.npy", arrays / "test_labels.npy");
    r = run_lth("eval --ckpt " + (dir / "best_acc.ckpt").string() + " --data_root " + (dir / "data").string() +
                " --image_size " + std::to_string(c.size) + " --threads 1 --json " + (dir / "eval.json").string());
    ASSERT_EQ(r.status, 0) << r.output;
    const auto expected = read_json(dir / "expected.json");
    const auto got = read_json(dir / "eval.json")["test"]["Ref_x" + std::to_string(c.size)];
    EXPECT_EQ(got["count"], 6);
    EXPECT_DOUBLE_EQ(got["acc"].get<double>(), expected["acc"].get<double>()) << c.model;
    EXPECT_NEAR(got["nll"].get<double>(), expected["nll"].get<double>(), 1e-4 * expected["nll"].get<double>())
        << c.model;
    fs::remove_all(dir);
  }
}

// .ckpt -> .safetensors -> .ckpt gives back every array bit for bit; the safetensors file is
// an ordinary lth checkpoint (torchvision names, masks, padding 'same' in its config).
TEST(Convert, RoundTripIsBitIdentical) {
  const auto dir = fresh_dir("convert_round_trip");
  fs::create_directories(dir);
  const auto ref = dir / "iter_016000.ckpt";
  auto r = reference("write '" + ref.string() + "' --model resnet18 --stem 7 --classes 5 --density 0.6");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth("convert --from " + ref.string() + " --to " + (dir / "lth.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resnet18"), std::string::npos) << r.output;
  const auto ckpt = io::load_checkpoint(dir / "lth.safetensors");
  EXPECT_EQ(ckpt.config["model"]["padding"], "same");
  EXPECT_EQ(ckpt.masks.size(), 20u);
  EXPECT_EQ(ckpt.state.at("layer4.1.conv2.weight").sizes(), (std::vector<int64_t>{512, 512, 3, 3}));

  r = run_lth("convert --from " + (dir / "lth.safetensors").string() + " --to " + (dir / "back.ckpt").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("not converted"), std::string::npos) << r.output;
  r = reference("compare '" + ref.string() + "' '" + (dir / "back.ckpt").string() + "'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("164 arrays, 0 differences"), std::string::npos) << r.output;

  // The converted file is what lth eval reads too: same content, other format.
  r = run_lth("convert --from " + (dir / "back.ckpt").string() + " --to " + (dir / "again.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto again = io::load_checkpoint(dir / "again.safetensors");
  for (const auto& [name, t] : ckpt.state) EXPECT_TRUE(torch::equal(t, again.state.at(name))) << name;
  fs::remove_all(dir);
}

// The README's recipe: the reference's rewind point and best_acc continued by lth train with
// SAME padding; lth's mask for the next cycle is the reference formula's (no ties in this
// file), and the ticket converts back to the reference's format.
TEST(Convert, AReferenceRunContinuedByLthTrain) {
  const auto dir = fresh_dir("convert_continue");
  fs::create_directories(dir);
  const auto ref = dir / "best_acc.ckpt";
  auto r = reference("write '" + ref.string() + "' --model resnet20 --channels 1 --classes 10 --seed 5");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string base = "train --data_name synthetic --model resnet20 --optim_ni 2 --batch_size 16 "
                           "--eval_every 2 --eval_batch_size 64 --num_workers 1 --threads 1 --seed 1 "
                           "--pruning_ratio 0.8 --matching_ckpt " + ref.string() + " --previous_ckpt " +
                           ref.string();
  // Symmetric padding would silently compute another network: refused, with the fix.
  r = run_lth(base + " --save " + (dir / "sym").string());
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--padding same"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "sym"));

  r = run_lth(base + " --padding same --save " + (dir / "001").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth("convert --from " + (dir / "001" / "init.safetensors").string() + " --to " +
              (dir / "001_init.ckpt").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = reference("check-prune '" + ref.string() + "' '" + (dir / "001_init.ckpt").string() + "' --ratio 0.8 --exact");
  EXPECT_EQ(r.status, 0) << r.output;
  fs::remove_all(dir);
}

TEST(Convert, BadFilesAndFlagsGiveOneLine) {
  const auto dir = fresh_dir("convert_bad");
  fs::create_directories(dir);
  const auto ref = dir / "r.ckpt";
  auto r = reference("write '" + ref.string() + "' --model resnet20 --classes 3");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto expect_error = [](const testing::CommandResult& res, const std::string& needle) {
    EXPECT_EQ(res.status, 2) << res.output;
    EXPECT_EQ(count_lines(res.output), 1) << res.output;
    EXPECT_NE(res.output.find(needle), std::string::npos) << res.output;
  };
  // Never overwrites, and the output's name says its format.
  { std::ofstream(dir / "exists.safetensors") << "mine"; }
  expect_error(run_lth("convert --from " + ref.string() + " --to " + (dir / "exists.safetensors").string()),
               "already exists");
  EXPECT_EQ(testing::read_file(dir / "exists.safetensors"), "mine");
  expect_error(run_lth("convert --from " + ref.string() + " --to " + (dir / "x.ckpt").string()), "*.safetensors");
  // A truncated reference file, wherever lth takes a checkpoint.
  const std::string bytes = testing::read_file(ref);
  { std::ofstream(dir / "torn.ckpt", std::ios::binary) << bytes.substr(0, bytes.size() / 3); }
  expect_error(run_lth("convert --from " + (dir / "torn.ckpt").string() + " --to " + (dir / "t.safetensors").string()),
               "torn.ckpt: truncated MessagePack");
  expect_error(run_lth("eval --ckpt " + (dir / "torn.ckpt").string() + " --data_root " + dir.string()),
               "torn.ckpt");
  expect_error(run_lth("train --data_name synthetic --model resnet20 --padding same --optim_ni 1 --matching_ckpt " +
                       (dir / "torn.ckpt").string() + " --save " + (dir / "run").string()),
               "torn.ckpt: truncated MessagePack");
  EXPECT_FALSE(fs::exists(dir / "t.safetensors"));
  expect_error(run_lth("train --data_name synthetic --model resnet20 --padding diagonal --optim_ni 1 --save " +
                       (dir / "run2").string()),
               "model.padding");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth
