// `lth launch` (src/cli/cmd_launch.cpp + dist/launcher.cpp), run as a real command through
// lth_dist_worker, with /bin/sh children.
#include <gtest/gtest.h>

#include "subprocess.h"

namespace lth::test {
namespace {

using namespace std::chrono_literals;


struct Launch {
  std::unique_ptr<Subprocess> process;
  fs::path out, err;
};

Launch start_launch(const fs::path& dir, std::vector<std::string> launch_args, const std::string& script) {
  std::vector<std::string> argv{kWorker, "launch"};
  argv.insert(argv.end(), launch_args.begin(), launch_args.end());
  argv.insert(argv.end(), {"--", "/bin/sh", "-c", script});
  Launch l;
  l.out = dir / "launch.out";
  l.err = dir / "launch.err";
  l.process = std::make_unique<Subprocess>(argv, std::map<std::string, std::string>{{"D", dir.string()}}, l.out, l.err);
  return l;
}

TEST(Launch, SetsTorchrunVariables) {
  TempDir dir("launch_env");
  auto l = start_launch(dir.path(), {"--nproc", "2"},
                        R"(echo "$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $GROUP_RANK $MASTER_ADDR $MASTER_PORT" > "$D/env.$RANK")");
  ASSERT_EQ(exit_code(l.process->wait_for(20s)), 0) << read_text(l.err);
  EXPECT_EQ(read_text(dir.path() / "env.0"), "0 2 0 2 0 127.0.0.1 29500\n");
  EXPECT_EQ(read_text(dir.path() / "env.1"), "1 2 1 2 0 127.0.0.1 29500\n");
}

TEST(Launch, MultiNodeRanks) {
  TempDir dir("launch_nodes");
  auto l = start_launch(dir.path(),
                        {"--nproc", "2", "--nnodes", "3", "--node_rank", "1", "--master_addr", "10.0.0.7",
                         "--master_port", "23456"},
                        R"(echo "$RANK $WORLD_SIZE $LOCAL_RANK $GROUP_RANK $MASTER_ADDR:$MASTER_PORT" > "$D/env.$LOCAL_RANK")");
  ASSERT_EQ(exit_code(l.process->wait_for(20s)), 0) << read_text(l.err);
  EXPECT_EQ(read_text(dir.path() / "env.0"), "2 6 0 1 10.0.0.7:23456\n");
  EXPECT_EQ(read_text(dir.path() / "env.1"), "3 6 1 1 10.0.0.7:23456\n");
}

// One rank fails: the launcher stops its sibling (and the sibling's own children) at once
// and exits non-zero naming the failed rank and its status.
TEST(Launch, FailingRankStopsTheOthers) {
  TempDir dir("launch_fail");
  const auto d = dir.path();
  const auto started = Clock::now();
  auto l = start_launch(d, {"--nproc", "2"},
                        R"(if [ "$RANK" = 1 ]; then sleep 0.5; exit 3; fi; sleep 60 & echo $! > "$D/sleep.pid"; wait)");
  const auto status = l.process->wait_for(20s);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  ASSERT_TRUE(status.has_value()) << "launch did not return";
  EXPECT_EQ(exit_code(status), 2);
  EXPECT_LT(seconds, 5.0);
  const auto err = read_text(l.err);
  EXPECT_NE(err.find("lth: launch: rank 1 (local rank 1, pid "), std::string::npos) << err;
  EXPECT_NE(err.find("exited with status 3; stopped the other ranks"), std::string::npos) << err;
  const auto sleep_pid = std::stoi(read_text(d / "sleep.pid"));
  EXPECT_TRUE(wait_until([&] { return !process_alive(sleep_pid); }, 2s)) << "rank 0's child survived";
}

TEST(Launch, KilledRankIsReported) {
  TempDir dir("launch_signal");
  auto l = start_launch(dir.path(), {"--nproc", "2"}, R"(if [ "$RANK" = 0 ]; then kill -KILL $$; fi; sleep 60)");
  ASSERT_EQ(exit_code(l.process->wait_for(20s)), 2);
  const auto err = read_text(l.err);
  EXPECT_NE(err.find("rank 0 (local rank 0, pid "), std::string::npos) << err;
  EXPECT_NE(err.find("was killed by signal 9"), std::string::npos) << err;
}

// Ranks that ignore SIGTERM are SIGKILLed after the grace period.
TEST(Launch, GracePeriodEndsInSigkill) {
  TempDir dir("launch_grace");
  const auto started = Clock::now();
  auto l = start_launch(dir.path(), {"--nproc", "2", "--grace_period", "1"},
                        R"(trap '' TERM; if [ "$RANK" = 1 ]; then sleep 0.3; exit 4; fi; sleep 60 & wait)");
  const auto status = l.process->wait_for(20s);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  ASSERT_EQ(exit_code(status), 2) << read_text(l.err);
  EXPECT_GE(seconds, 1.0);
  EXPECT_LT(seconds, 6.0);
  EXPECT_NE(read_text(l.err).find("rank 1 (local rank 1, pid "), std::string::npos) << read_text(l.err);
}

// SIGTERM to the launcher reaches every rank; the launcher then exits non-zero.
TEST(Launch, ForwardsSigtermToEveryRank) {
  TempDir dir("launch_forward");
  const auto d = dir.path();
  auto l = start_launch(d, {"--nproc", "2"},
                        R"(trap 'echo term > "$D/term.$RANK"; exit 0' TERM; echo up > "$D/up.$RANK"; sleep 60 & wait)");
  ASSERT_TRUE(wait_until([&] { return fs::exists(d / "up.0") && fs::exists(d / "up.1"); }, 10s)) << read_text(l.err);
  l.process->signal(SIGTERM);
  const auto status = l.process->wait_for(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(exit_code(status), 2);
  EXPECT_EQ(read_text(d / "term.0"), "term\n");
  EXPECT_EQ(read_text(d / "term.1"), "term\n");
  EXPECT_NE(read_text(l.err).find("interrupted by signal 15"), std::string::npos) << read_text(l.err);
}

TEST(Launch, UsageErrors) {
  TempDir dir("launch_usage");
  const auto d = dir.path();
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{kWorker, "launch"};
    argv.insert(argv.end(), args.begin(), args.end());
    Subprocess p(argv, {}, d / "out", d / "err");
    const int code = exit_code(p.wait_for(20s));
    return std::make_pair(code, read_text(d / "err"));
  };
  auto [code, err] = run({"--nproc", "2", "--", "/nonexistent/program"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("/nonexistent/program: not an executable file"), std::string::npos) << err;
  std::tie(code, err) = run({"--nproc", "2", "--", "no-such-command-lth"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("no-such-command-lth: command not found on PATH"), std::string::npos) << err;
  std::tie(code, err) = run({"--nproc", "2", "--nnodes", "2", "--node_rank", "2", "--", "/bin/true"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--node_rank 2"), std::string::npos) << err;
  std::tie(code, err) = run({"--nproc", "0", "--", "/bin/true"});
  EXPECT_EQ(code, 2);
  std::tie(code, err) = run({"--nproc", "2"});
  EXPECT_NE(code, 0);  // CLI11: the command is required
}

}  // namespace
}  // namespace lth::test
