// The lth binary on hostile settings and files: exit status 2 and exactly one line naming
// the key or file; no signal, no hang, no "internal error". Bombs run under an address-space
// limit (ulimit -v), so an unbounded allocation would fail the test rather than the machine.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "../cli/test_util.h"
#include "io/run_lock.h"

namespace fs = std::filesystem;
using lth::testing::fresh_dir;
using lth::testing::run_command;
using lth::testing::run_lth;

namespace {

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Exit 2, one line, naming `needle`, never an internal error.
void expect_user_error(const lth::testing::CommandResult& r, const std::string& needle,
                       const std::string& what) {
  EXPECT_EQ(r.status, 2) << what << ": " << r.output;
  EXPECT_EQ(count_lines(r.output), 1) << what << ": " << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << what << ": " << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << what << ": " << r.output;
}

// Runs lth under a 4 GiB address-space limit (LibTorch alone maps ~1 GiB).
lth::testing::CommandResult run_lth_limited(const std::string& args) {
  return run_command("ulimit -v 4194304; " + std::string(LTH_BINARY) + " " + args);
}

}  // namespace

TEST(HostileCli, EveryBadSettingEndsWithExit2NamingTheKey) {
  const auto dir = fresh_dir("hostile_settings");
  for (const char* set : {"train.momentum=nan", "train.lr=inf", "train.weight_decay=-1",
                          "train.label_smoothing=2", "data.image_size=-5", "train.ckpt_every=-7",
                          "train.num_workers=4294967298", "imp.cycles=9999999999"}) {
    const std::string key = std::string(set).substr(0, std::string(set).find('='));
    expect_user_error(run_lth("imp --print_config --set " + std::string(set) + " --save " +
                              (dir / "run").string()),
                      key, set);
  }
  EXPECT_FALSE(fs::exists(dir / "run"));
  expect_user_error(run_lth("train --optim_global_clipping 1abc --save " + (dir / "t").string()),
                    "--optim_global_clipping", "clipping 1abc");
  expect_user_error(run_lth("launch --nproc 1 --nnodes 1073741824 -- true"), "--nnodes", "nnodes");
  expect_user_error(run_lth("launch --nproc 2 --nnodes 1048576 -- true"), "ranks", "nproc*nnodes");
  expect_user_error(run_lth("launch --nproc 1 --grace_period inf -- true"), "--grace_period",
                    "grace");
  fs::remove_all(dir);
}

TEST(HostileCli, SecondImpOnALockedFolderRefusesNamingTheHolder) {
  const auto dir = fresh_dir("hostile_lock");
  lth::io::RunFolderLock lock(dir);  // this test process plays the first `lth imp`
  expect_user_error(run_lth("imp --set data.name=synthetic --save " + dir.string()),
                    "pid " + std::to_string(::getpid()), "locked folder");
  fs::remove_all(dir);
}

TEST(HostileCli, HostileCheckpointIsOneLine) {
  const auto dir = fresh_dir("hostile_ckpt");
  fs::create_directories(dir);
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  std::ofstream(dir / "dup.safetensors", std::ios::binary) << bytes << header << "x";
  expect_user_error(run_lth_limited("eval --ckpt " + (dir / "dup.safetensors").string() +
                                    " --data_root " + dir.string()),
                    "dup.safetensors", "duplicate keys");
  fs::remove_all(dir);
}

// A full disk (RLIMIT_FSIZE: writes past 256 KiB fail with EFBIG; SIGXFSZ ignored) while
// `lth imp` writes its first checkpoint: one line naming the file, exit 2; the folder holds
// no temporaries; once space is back the same command resumes and finishes.
TEST(HostileCli, DiskFullRunResumesOnceSpaceIsBack) {
  const auto dir = fresh_dir("hostile_disk_full");
  const std::string command =
      std::string(LTH_BINARY) +
      " imp --set data.name=synthetic --set data.holdout=0 --set run.replicates=1 --set "
      "imp.branches= --set imp.rewind_iterations=4 --set imp.cycle_iterations=8"
      " --set train.eval_every=4 --set imp.cycles=1 --set train.batch_size=16"
      " --set train.eval_batch_size=64 --set train.num_workers=0 --set run.threads=1"
      " --save " +
      dir.string();
  const auto full = run_command("trap '' XFSZ; ulimit -f 256; " + command);
  EXPECT_EQ(full.status, 2) << full.output;
  EXPECT_EQ(full.output.find("internal error"), std::string::npos) << full.output;
  EXPECT_NE(full.output.find("lth: "), std::string::npos) << full.output;
  EXPECT_NE(full.output.find(".safetensors"), std::string::npos) << full.output;
  ASSERT_TRUE(fs::exists(dir)) << full.output;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".lth-tmp"), std::string::npos) << e.path();
  const auto resumed = run_command(command);
  EXPECT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_TRUE(fs::exists(dir / "001" / "summary.json"));
  fs::remove_all(dir);
}
