// Interrupted and hostile writes: atomic replacement that cannot be redirected, one writer
// per run folder, stale temporaries cleaned, a full disk that leaves the previous
// checkpoint intact; and validation of what resuming reads back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "imp/config.h"
#include "imp/config_validation.h"
#include "io/checkpoint.h"
#include "io/file_util.h"
#include "io/run_lock.h"
#include "train/resume_check.h"
#include "train/run_log.h"

namespace fs = std::filesystem;
using namespace lth;

namespace {

fs::path fresh(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lth_safe_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

int count_temporaries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (io::is_stale_temporary(e.path())) ++n;
  return n;
}

}  // namespace

TEST(SafeWrites, PlantedSymlinkAtTheOldTemporaryNameIsNotWrittenThrough) {
  const auto dir = fresh("symlink");
  std::ofstream(dir / "victim") << "precious";
  fs::create_symlink(dir / "victim", dir / "config.toml.tmp");
  io::write_text_atomically(dir / "config.toml", "a = 1\n");
  EXPECT_EQ(slurp(dir / "victim"), "precious");
  EXPECT_EQ(slurp(dir / "config.toml"), "a = 1\n");
  EXPECT_EQ(count_temporaries(dir), 1);  // only the planted legacy name
  fs::remove_all(dir);
}

TEST(SafeWrites, TemporariesForNamedWritersAreFreshAndExclusive) {
  const auto dir = fresh("named_tmp");
  std::ofstream(dir / "victim") << "precious";
  fs::create_symlink(dir / "victim", dir / "plot.png.tmp");  // the old fixed name
  const auto a = io::create_temporary_file(dir / "plot.png");
  const auto b = io::create_temporary_file(dir / "plot.png");
  EXPECT_NE(a, b);
  EXPECT_TRUE(io::is_stale_temporary(a));
  EXPECT_EQ(a.parent_path(), dir);
  EXPECT_EQ(fs::file_size(a), 0u);
  EXPECT_EQ(slurp(dir / "victim"), "precious");
  fs::remove_all(dir);
}

TEST(SafeWrites, StaleTemporariesAreRemovedWhenTheFolderIsLocked) {
  const auto dir = fresh("stale");
  fs::create_directories(dir / "000");
  std::ofstream(dir / "000" / ".last.safetensors.0123456789abcdef.lth-tmp") << "torn";
  std::ofstream(dir / "000" / "last.safetensors.tmp") << "torn (older lth)";
  std::ofstream(dir / "000" / "notes.tmp") << "the user's";
  {
    io::RunFolderLock lock(dir);
    EXPECT_EQ(lock.removed_temporaries().size(), 2u);
  }
  EXPECT_TRUE(fs::exists(dir / "000" / "notes.tmp"));
  EXPECT_EQ(count_temporaries(dir), 0);
  fs::remove_all(dir);
}

TEST(SafeWrites, SecondWriterIsRefusedNamingTheHolder) {
  const auto dir = fresh("lock");
  io::RunFolderLock first(dir);
  const std::string problem = user_error([&] { io::RunFolderLock second(dir); });
  EXPECT_NE(problem.find("pid " + std::to_string(::getpid())), std::string::npos) << problem;
  EXPECT_NE(problem.find(dir.string()), std::string::npos) << problem;
  fs::remove_all(dir);
}

TEST(SafeWrites, FailedStartLeavesNoFolderBehind) {
  const auto dir = fresh("failed_start") / "run";
  { io::RunFolderLock lock(dir); }
  EXPECT_FALSE(fs::exists(dir));
  fs::remove_all(dir.parent_path());
}

// A full disk, simulated with RLIMIT_FSIZE in a child (writes past the limit fail with
// EFBIG once SIGXFSZ is ignored): the failed save must leave the previous checkpoint intact
// and no temporary; the same save succeeds once space is back.
TEST(SafeWrites, DiskFullLeavesThePreviousCheckpointIntact) {
  const auto dir = fresh("disk_full");
  const auto path = dir / "last.safetensors";
  io::Checkpoint small;
  small.iteration = 1;
  small.state["w"] = torch::ones({16});
  io::save_checkpoint(path, small);
  const std::string before = slurp(path);
  io::Checkpoint big = small;
  big.iteration = 2;
  big.state["w"] = torch::ones({1 << 18});  // 1 MB
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 0;
    try {
      io::save_checkpoint(path, big);
      code = 1;  // should not succeed
    } catch (const UserError& e) {
      code = std::string(e.what()).find(path.string()) != std::string::npos ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the failed save must be a UserError naming the file";
  EXPECT_EQ(slurp(path), before);
  EXPECT_EQ(io::load_checkpoint(path).iteration, 1);
  EXPECT_EQ(count_temporaries(dir), 0);
  io::save_checkpoint(path, big);  // space is back
  EXPECT_EQ(io::load_checkpoint(path).iteration, 2);
  fs::remove_all(dir);
}

TEST(SafeWrites, MetricsAppendFailureIsReported) {
  const auto dir = fresh("metrics");
  train::RunLog log(dir, true);
  log.event("start", {{"iteration", 0}});
  fs::remove_all(dir);  // the folder vanished under the run
  EXPECT_THROW(log.event("eval", {{"iteration", 1}}), UserError);
}

TEST(SafeWrites, TruncateToleratesNonNumericIterations) {
  const auto dir = fresh("truncate");
  std::ofstream(dir / "metrics.jsonl") << R"({"event":"eval","iteration":"ten"})"
                                       << "\n"
                                       << R"({"event":"eval","iteration":5})"
                                       << "\n"
                                       << R"({"event":"eval","iteration":50})"
                                       << "\n"
                                       << "[1,2]\n";
  train::RunLog log(dir, true);
  EXPECT_NO_THROW(log.truncate_after(10));
  const std::string text = slurp(dir / "metrics.jsonl");
  EXPECT_EQ(text.find("50"), std::string::npos);
  EXPECT_NE(text.find("\"iteration\":5"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ResumeCheck, TrainerStateIsValidated) {
  const nlohmann::json good = {{"iteration", 10},      {"epoch", 1},
                               {"batch", 2},           {"best_acc", 0.5},
                               {"best_iteration", 10}, {"window_loss_sum", 1.5},
                               {"window_count", 3},    {"loss_scaler", {{"scale", 65536.0}}},
                               {"complete", false}};
  EXPECT_NO_THROW(train::check_trainer_state(good, "last.safetensors", 100));
  const auto problem = [&](const std::string& key, const nlohmann::json& value) {
    auto bad = good;
    bad[key] = value;
    return user_error([&] { train::check_trainer_state(bad, "last.safetensors", 100); });
  };
  EXPECT_NE(problem("epoch", -1).find("'epoch'"), std::string::npos);
  EXPECT_NE(problem("batch", -3).find("'batch'"), std::string::npos);
  EXPECT_NE(problem("iteration", "ten").find("'iteration'"), std::string::npos);
  EXPECT_NE(problem("iteration", 1000).find("'iteration'"), std::string::npos);
  EXPECT_NE(problem("best_acc", 7.0).find("'best_acc'"), std::string::npos);
  EXPECT_NE(problem("complete", 1).find("'complete'"), std::string::npos);
  EXPECT_NE(problem("loss_scaler", {{"scale", -1}}).find("scale"), std::string::npos);
  EXPECT_NE(user_error([&] { train::check_trainer_state(nlohmann::json::array(), "f", 1); }), "");
}

TEST(ConfigValidation, EveryBadSettingNamesItsKey) {
  for (const char* assignment :
       {"train.momentum=nan", "train.lr=inf", "train.weight_decay=-1", "train.label_smoothing=2",
        "data.image_size=-5", "train.ckpt_every=-7", "train.num_workers=4294967298",
        "imp.cycles=9999999999", "train.momentum=1.0", "imp.pruning_ratio=0"}) {
    imp::ImpConfig c = imp::default_config();
    const std::string key = std::string(assignment).substr(0, std::string(assignment).find('='));
    const std::string problem = user_error([&] {
      imp::apply_override(c, assignment);
      imp::validate_ranges(c);
    });
    EXPECT_NE(problem.find(key), std::string::npos) << assignment << ": " << problem;
  }
  EXPECT_NO_THROW(imp::validate_ranges(imp::default_config()));
  // Strings must read back from config.toml identically (a fuzz finding): UTF-8, no controls.
  for (const char* root : {"/data/\xff", "/data/a\x01b", "/data/\xc3", "/data/\xed\xa0\x80"}) {
    imp::ImpConfig c = imp::default_config();
    c.data_root = root;
    EXPECT_NE(user_error([&] { imp::validate_ranges(c); }).find("data.root"), std::string::npos);
  }
  imp::ImpConfig c = imp::default_config();
  c.data_root = "/data/Bilder \xc3\xa4 \xf0\x9f\x90\x88";
  EXPECT_NO_THROW(imp::validate_ranges(c));
  EXPECT_THROW(imp::parse_finite_flag("--optim_global_clipping", "1abc", 0, 1e12), UserError);
  EXPECT_THROW(imp::parse_finite_flag("--optim_global_clipping", "nan", 0, 1e12), UserError);
  EXPECT_DOUBLE_EQ(imp::parse_finite_flag("--optim_global_clipping", "1.5", 0, 1e12), 1.5);
}
