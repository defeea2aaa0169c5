// End to end: `lth make-imagenet --format official|kaggle|flat`, `lth prepare-imagenet`,
// `lth train` (its quick data check) and `lth eval` giving the same results on every
// download layout as on lth's own, and `lth data check`'s exit status and output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>

#include <sys/wait.h>

#include "ilsvrc_test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using ilsvrc_test::read_bytes;
using ilsvrc_test::scratch;
using ilsvrc_test::write_bytes;

struct Run {
  int status = -1;
  std::string output;
};

Run lth(const std::string& args) {
  Run r;
  FILE* pipe = ::popen((std::string(LTH_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe)) r.output += buf.data();
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

const char* kMake = " --classes 4 --per_class 6 --test_per_class 3 --size 40 --seed 2";

TEST(IlsvrcCli, EveryDownloadLayoutEvaluatesLikeTheFolderLayout) {
  const auto dir = scratch("cli");
  for (const char* format : {"folders", "official", "kaggle", "flat"}) {
    const auto r = lth("make-imagenet --out " + (dir / format).string() + " --format " + format + kMake);
    ASSERT_EQ(r.status, 0) << format << ": " << r.output;
  }
  ASSERT_TRUE(fs::exists(dir / "official/ILSVRC2012_img_train.tar"));
  auto r = lth("prepare-imagenet --from " + (dir / "official").string() + " --to " + (dir / "prepared").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("imagenet/train: 29 images"), std::string::npos) << r.output;  // 4 x 6 + 5 odd files

  r = lth("train --data_root " + (dir / "folders").string() +
          " --model resnet20 --image_size 32 --batch_size 8 --optim_ni 2 --eval_every 2 --eval_batch_size 16"
          " --num_workers 1 --threads 1 --seed 3 --save " + (dir / "run").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // The quick data check ran first and logged its table (the odd files: logged, not fatal).
  EXPECT_NE(r.output.find("data check: imagenet/train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("data check: 0 problems, 2 unreadable files"), std::string::npos) << r.output;
  // A half-extracted tree (a train class folder gone) stops the run before it starts, unless
  // the check is turned off.
  fs::copy(dir / "folders", dir / "half", fs::copy_options::recursive);
  fs::remove_all(dir / "half/imagenet/train/n01491361");
  const std::string tiny = " --model resnet20 --image_size 32 --batch_size 8 --optim_ni 1 --eval_every 1"
                           " --eval_batch_size 16 --num_workers 1 --threads 1 --seed 3 --save ";
  r = lth("train --data_root " + (dir / "half").string() + tiny + (dir / "run_half").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("1 validation classes have no train folder (their images are left out): n01491361"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "run_half"));
  r = lth("train --data_check false --data_root " + (dir / "half").string() + tiny + (dir / "run_half").string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("data check:"), std::string::npos) << r.output;
  const auto ckpt = (dir / "run/best_acc.safetensors").string();
  const auto eval = [&](const std::string& root, const std::string& extra) {
    const auto json = dir / (fs::path(root).filename().string() + ".json");
    const auto e = lth("eval --ckpt " + ckpt + " --data_root " + root + " --image_size 32 --threads 1 --json " +
                       json.string() + extra);
    EXPECT_EQ(e.status, 0) << e.output;
    return e.status == 0 ? read_json(json)["test"] : nlohmann::json();
  };
  const auto own = eval((dir / "folders").string(), "");
  ASSERT_TRUE(own.contains("imagenet"));
  for (const auto& [root, extra] : std::vector<std::pair<std::string, std::string>>{
           {(dir / "kaggle").string(), ""},
           {(dir / "prepared").string(), ""},
           {(dir / "flat").string(), " --val_labels " + (dir / "flat/val_ids.txt").string()}}) {
    const auto other = eval(root, extra);
    for (const auto& [set, result] : other.items()) {
      ASSERT_TRUE(own.contains(set)) << set;
      EXPECT_EQ(result["count"], own[set]["count"]) << root << " " << set;
      EXPECT_DOUBLE_EQ(result["acc"].get<double>(), own[set]["acc"].get<double>()) << root << " " << set;
      EXPECT_NEAR(result["nll"].get<double>(), own[set]["nll"].get<double>(), 1e-6) << root << " " << set;
    }
  }
  EXPECT_EQ(eval((dir / "kaggle").string(), "").size(), own.size());  // V2, R, A, Sketch by release name

  // `lth data check`: a good tree -> 0 and the table; the official counts -> 2, one line per problem.
  r = lth("make-imagenet --no_odd_files --format kaggle --out " + (dir / "clean").string() + kMake);
  ASSERT_EQ(r.status, 0) << r.output;
  r = lth("data check --subset --data_root " + (dir / "clean").string() + " --image_size 32");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("imagenet/train"), std::string::npos);
  EXPECT_NE(r.output.find("data check: OK"), std::string::npos) << r.output;
  r = lth("data check --data_root " + (dir / "kaggle").string() + " --image_size 32");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("problem: class index: 4 classes"), std::string::npos) << r.output;
  // --full reads every file: the generator's truncated and empty files are listed.
  r = lth("data check --subset --full --data_root " + (dir / "folders").string() + " --image_size 32");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("unreadable: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("_truncated.JPEG"), std::string::npos) << r.output;
  // A truncated official tar.
  fs::create_directories(dir / "cut");
  const auto tar = read_bytes(dir / "official/ILSVRC2012_img_train.tar");
  write_bytes(dir / "cut/ILSVRC2012_img_train.tar", tar.substr(0, tar.size() / 2));
  r = lth("data check --subset --data_root " + (dir / "cut").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("ILSVRC2012_img_train.tar at byte"), std::string::npos) << r.output;
  // make-shards streams the tars.
  r = lth("make-shards --from " + (dir / "official").string() + " --to " + (dir / "shards").string() +
          " --format webdataset --shard_size 10");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "shards/train/train-000000.tar"));
  // Its unreadable records (the generator's truncated and empty JPEGs) are named by shard and offset.
  r = lth("data check --subset --data_root " + (dir / "shards").string() + " --image_size 32");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("unreadable: " + (dir / "shards/train/train-00000").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("data check: 0 problems, 2 unreadable files"), std::string::npos) << r.output;
  // A truncated shard is a problem of its own.
  const auto shard = read_bytes(dir / "shards/train/train-000001.tar");
  write_bytes(dir / "shards/train/train-000001.tar", shard.substr(0, shard.size() / 2));
  r = lth("data check --subset --data_root " + (dir / "shards").string() + " --image_size 32");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("problem: imagenet/train: 1 shard files are damaged"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth
