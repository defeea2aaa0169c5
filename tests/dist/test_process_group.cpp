// Data-parallel training over Gloo on 127.0.0.1, with the ranks as real processes (the
// lth_dist_worker binary): equivalence with single-process micro-batching, and clear,
// bounded failures when a peer dies, stalls or never arrives.
#include <gtest/gtest.h>

#include <algorithm>
#include <torch/types.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "dist/process_group.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "scoped_env.h"
#include "subprocess.h"

namespace lth::test {
namespace {

using namespace std::chrono_literals;


// Variables a test's children must not inherit from whoever runs the tests.
std::map<std::string, std::string> clean_env(std::map<std::string, std::string> extra = {}) {
  // SLURM_*: a test run inside a multi-task Slurm job must not make its children join it.
  std::map<std::string, std::string> env{{"RANK", ""},          {"WORLD_SIZE", ""},         {"LOCAL_RANK", ""},
                                         {"MASTER_ADDR", ""},   {"MASTER_PORT", ""},        {"OMP_NUM_THREADS", "1"},
                                         {"LTH_DIST_SHM", ""},  {"SLURM_PROCID", ""},       {"SLURM_NTASKS", ""},
                                         {"SLURM_LOCALID", ""}, {"SLURM_JOB_NODELIST", ""}, {"SLURM_STEP_NODELIST", ""}};
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

std::map<std::string, std::string> rank_env(int rank, int world, int port, int timeout_s) {
  return clean_env({{"RANK", std::to_string(rank)},
                    {"WORLD_SIZE", std::to_string(world)},
                    {"LOCAL_RANK", std::to_string(rank)},
                    {"MASTER_ADDR", "127.0.0.1"},
                    {"MASTER_PORT", std::to_string(port)},
                    {"LTH_DIST_TIMEOUT", std::to_string(timeout_s)}});
}

// Starts `world` ranks of `args` (kWorker first), each with rank_env plus its share of
// `extra` (variable -> value per rank), writing DIR/r<R>.out and DIR/r<R>.err.
std::vector<std::unique_ptr<Subprocess>> start_ranks(const fs::path& dir, const std::vector<std::string>& args,
                                                     int world, int timeout_s,
                                                     const std::map<std::string, std::vector<std::string>>& extra = {}) {
  const int port = free_port();
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < world; ++r) {
    auto env = rank_env(r, world, port, timeout_s);
    for (const auto& [name, values] : extra) env[name] = values.at(static_cast<size_t>(r));
    const auto stem = dir / ("r" + std::to_string(r));
    ranks.push_back(std::make_unique<Subprocess>(args, env, stem.string() + ".out", stem.string() + ".err"));
  }
  return ranks;
}

// Runs `args` to completion (at most 60 s) and expects exit status 0.
void run_ok(const std::vector<std::string>& args, const fs::path& dir, const std::string& name,
            const std::map<std::string, std::string>& env = clean_env()) {
  Subprocess p(args, env, dir / (name + ".out"), dir / (name + ".err"));
  const auto status = p.wait_for(60s);
  ASSERT_EQ(exit_code(status), 0) << name << " stderr:\n" << read_text(dir / (name + ".err"));
}

bool is_bn_statistic(const std::string& name) {
  return name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos;
}

// Largest |a - b| over the parameters (BN running statistics excluded).
double max_parameter_difference(const io::Checkpoint& a, const io::Checkpoint& b) {
  double worst = 0;
  for (const auto& [name, t] : a.state) {
    if (is_bn_statistic(name)) continue;
    EXPECT_TRUE(b.state.count(name)) << name;
    if (!b.state.count(name)) continue;
    worst = std::max(worst, (t.to(torch::kFloat64) - b.state.at(name).to(torch::kFloat64)).abs().max().item<double>());
  }
  return worst;
}

void expect_same_parameters(const io::Checkpoint& a, const io::Checkpoint& b, double tolerance) {
  ASSERT_EQ(a.state.size(), b.state.size());
  for (const auto& [name, t] : a.state) {
    if (is_bn_statistic(name)) continue;
    ASSERT_TRUE(b.state.count(name)) << name;
    EXPECT_TRUE(torch::allclose(t, b.state.at(name), /*rtol=*/tolerance, /*atol=*/tolerance))
        << name << ": max |diff| " << (t - b.state.at(name)).abs().max().item<double>();
  }
}

void expect_same_masks(const io::Checkpoint& a, const io::Checkpoint& b) {
  ASSERT_EQ(a.masks.size(), b.masks.size());
  ASSERT_FALSE(a.masks.empty());
  for (const auto& [name, m] : a.masks) {
    ASSERT_TRUE(b.masks.count(name)) << name;
    EXPECT_TRUE(torch::equal(m, b.masks.at(name))) << name;
  }
}

// --- equivalence ------------------------------------------------------------------------

// The overlapped, bucketed reducer sums exactly what one all-reduce over every gradient
// sums, bit for bit, with micro-batches, several buckets and an unused parameter.
TEST(DataParallel, BucketedReducerEqualsOneAllReduceBitForBit) {
  TempDir dir("reduce");
  const auto d = dir.path();
  const auto port = std::to_string(free_port());
  run_ok({kWorker, "launch", "--nproc", "2", "--master_port", port, "--", kWorker, "reduce", "--out", d.string()},
         d, "reduce", clean_env({{"LTH_DIST_TIMEOUT", "30"}}));
  const auto rank0 = io::read_safetensors(d / "reduce0.safetensors");
  const auto rank1 = io::read_safetensors(d / "reduce1.safetensors");
  const auto buckets = rank0.metadata.at("buckets");
  EXPECT_GE(std::count(buckets.begin(), buckets.end(), ','), 3) << buckets;  // several buckets
  int compared = 0;
  for (const auto& [name, plain] : rank0.tensors) {
    if (name.rfind("plain.", 0) != 0) continue;
    const auto bucketed = "bucketed." + name.substr(6);
    EXPECT_TRUE(torch::equal(plain, rank0.tensors.at(bucketed))) << name;
    EXPECT_TRUE(torch::equal(plain, rank1.tensors.at(bucketed))) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 2 * 6);  // 2 steps x (conv w, b; linear w, b; unused w, b)
  // The unused layer's gradient is zero; the used ones are not.
  EXPECT_EQ(rank0.tensors.at("bucketed.1.4").abs().max().item<double>(), 0.0);
  EXPECT_GT(rank0.tensors.at("bucketed.1.0").abs().max().item<double>(), 0.0);
}

// With per-rank BN statistics, 2 ranks x B/2 are one rank with micro-batches of B/2 (each
// chunk normalised by its own statistics), and the gradient is the mean over the global
// batch in both: the all-reduce SUMS per-rank gradients that are each divided by
// n_local * world_size. Same seeds, so the loader's rank slices are the micro-batches.
// Both transports: shared memory (the default for ranks on one machine) and Gloo.
TEST(DataParallel, TwoRanksEqualOneRankWithMicroBatchesThroughSharedMemoryAndGloo) {
  TempDir dir("equiv");
  const auto d = dir.path();
  const std::vector<std::string> train = {"train", "--model", "resnet20", "--image_size", "8", "--channels", "3",
                                          "--steps", "6", "--batch", "16", "--eval_every", "3"};
  auto with = [&](std::vector<std::string> head, const std::string& out, std::vector<std::string> tail = {}) {
    head.insert(head.end(), train.begin(), train.end());
    head.push_back("--out");
    head.push_back((d / out).string());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  run_ok(with({kWorker}, "micro", {"--micro_batch", "8"}), d, "micro");
  run_ok(with({kWorker}, "full"), d, "full");
  const auto port = std::to_string(free_port());
  run_ok(with({kWorker, "launch", "--nproc", "2", "--master_port", port, "--", kWorker}, "two"), d, "two",
         clean_env({{"LTH_DIST_TIMEOUT", "30"}}));
  const auto gloo_port = std::to_string(free_port());
  run_ok(with({kWorker, "launch", "--nproc", "2", "--master_port", gloo_port, "--", kWorker}, "gloo"), d, "gloo",
         clean_env({{"LTH_DIST_TIMEOUT", "30"}, {"LTH_DIST_SHM", "0"}}));

  const auto micro = io::load_checkpoint(d / "micro" / "rank0.safetensors");
  const auto full = io::load_checkpoint(d / "full" / "rank0.safetensors");
  const auto rank0 = io::load_checkpoint(d / "two" / "rank0.safetensors");
  const auto rank1 = io::load_checkpoint(d / "two" / "rank1.safetensors");

  // 2 ranks == 1 rank with micro-batches, bit for bit: the rank sum g0 + g1 is the
  // accumulation of the two micro-batches' gradients, on either transport.
  const auto gloo = io::load_checkpoint(d / "gloo" / "rank0.safetensors");
  std::cout << "max |2 ranks - 1 rank with micro-batches| = " << max_parameter_difference(rank0, micro)
            << " (Gloo: " << max_parameter_difference(gloo, micro) << ")"
            << ", max |1 rank, batch 16 - micro-batches| = " << max_parameter_difference(full, micro) << "\n";
  EXPECT_EQ(max_parameter_difference(rank0, micro), 0.0);
  EXPECT_EQ(max_parameter_difference(gloo, micro), 0.0);
  expect_same_masks(rank0, micro);
  expect_same_masks(gloo, micro);
  // ... and the comparison is sensitive: one batch of 16 normalised together differs.
  EXPECT_GT(max_parameter_difference(full, micro), 1e-4);

  // The ranks agree exactly: identical parameters, masks, and BN running statistics (those
  // are averaged across ranks before every evaluation, the last one at the final step).
  for (const auto& [name, t] : rank0.state) {
    EXPECT_TRUE(torch::equal(t, rank1.state.at(name))) << name;
  }
  expect_same_masks(rank0, rank1);
  // Pruned weights stayed exactly zero.
  for (const auto& [name, m] : rank0.masks) {
    EXPECT_EQ((rank0.state.at(name) * (1 - m)).abs().max().item<double>(), 0.0) << name;
  }
  // Rank 0 alone wrote the run folder's checkpoints and logs.
  EXPECT_TRUE(fs::exists(d / "two" / "run" / "last.safetensors"));
  EXPECT_TRUE(fs::exists(d / "two" / "run" / "metrics.jsonl"));
  expect_same_parameters(io::load_checkpoint(d / "two" / "run" / "last.safetensors"), rank0, 0);
}

// Without BN the split does not matter at all: 2 ranks x 16 == 1 rank x 32.
TEST(DataParallel, TwoRanksEqualOneRankWithoutBatchNorm) {
  TempDir dir("lenet");
  const auto d = dir.path();
  const std::vector<std::string> train = {"train", "--model", "lenet300_100", "--image_size", "28",
                                          "--channels", "1", "--prunable", "all", "--steps", "5",
                                          "--batch", "32", "--eval_every", "5"};
  auto cmd = [&](std::vector<std::string> head, const std::string& out) {
    head.insert(head.end(), train.begin(), train.end());
    head.push_back("--out");
    head.push_back((d / out).string());
    return head;
  };
  run_ok(cmd({kWorker}, "one"), d, "one");
  const auto port = std::to_string(free_port());
  run_ok(cmd({kWorker, "launch", "--nproc", "2", "--master_port", port, "--", kWorker}, "two"), d, "two",
         clean_env({{"LTH_DIST_TIMEOUT", "30"}}));
  const auto one = io::load_checkpoint(d / "one" / "rank0.safetensors");
  const auto two = io::load_checkpoint(d / "two" / "rank0.safetensors");
  std::cout << "max |2 ranks - 1 rank| = " << max_parameter_difference(two, one) << "\n";
  expect_same_parameters(two, one, 1e-5);
  expect_same_masks(two, one);
}

// The whole IMP pipeline (rewind phase, 3 cycles of pruning, tests, report) on 2 ranks
// equals 1 rank: same masks, weights, accuracies. Rank 0 draws the seed and writes every
// file; rank 1 reads what rank 0 wrote (config, rewind point, previous best_acc), which
// the barrier at the end of every training phase makes safe.
TEST(DataParallel, ImpOnTwoRanksEqualsOneRank) {
  TempDir dir("imp");
  const auto d = dir.path();
  // 2 ranks with a drawn seed (every rank must use rank 0's), then 1 rank with that seed.
  const auto port = std::to_string(free_port());
  run_ok({kWorker, "launch", "--nproc", "2", "--master_port", port, "--", kWorker, "imp", "--run",
          (d / "two").string()},
         d, "two", clean_env({{"LTH_DIST_TIMEOUT", "30"}}));
  const auto config = read_text(d / "two" / "config.toml");
  const auto at = config.find("seed = ");
  ASSERT_NE(at, std::string::npos) << config;
  const auto seed = std::to_string(std::stoll(config.substr(at + 7)));
  run_ok({kWorker, "imp", "--run", (d / "one").string(), "--seed", seed}, d, "one");
  for (const std::string cycle : {"000", "001", "002"}) {
    auto summary = [&](const std::string& run) {
      std::ifstream in(d / run / cycle / "summary.json");
      return nlohmann::json::parse(in);
    };
    const auto a = summary("one"), b = summary("two");
    EXPECT_EQ(a["prunable_kept"], b["prunable_kept"]) << cycle;
    EXPECT_EQ(a["best_iteration"], b["best_iteration"]) << cycle;
    EXPECT_NEAR(a["best_val_acc"].get<double>(), b["best_val_acc"].get<double>(), 1e-9) << cycle;
    for (const auto& [set, r] : a["test"].items()) {
      EXPECT_EQ(r["acc"], b["test"][set]["acc"]) << cycle << " " << set;
      EXPECT_EQ(r["count"], b["test"][set]["count"]) << cycle << " " << set;
      EXPECT_NEAR(r["nll"].get<double>(), b["test"][set]["nll"].get<double>(), 1e-6) << cycle << " " << set;
    }
    const auto init_a = io::load_checkpoint(d / "one" / cycle / "init.safetensors");
    const auto init_b = io::load_checkpoint(d / "two" / cycle / "init.safetensors");
    expect_same_masks(init_a, init_b);
    expect_same_parameters(init_a, init_b, 1e-5);
    expect_same_parameters(io::load_checkpoint(d / "one" / cycle / "best_acc.safetensors"),
                           io::load_checkpoint(d / "two" / cycle / "best_acc.safetensors"), 1e-5);
  }
  EXPECT_LT(nlohmann::json::parse(read_text(d / "two" / "002" / "summary.json"))["density"].get<double>(), 0.3);
  // Ranks on one machine sum through shared memory, and the log says so.
  const auto log = read_text(d / "two" / "000" / "log.txt");
  EXPECT_NE(log.find("; 2 ranks, sums through shared memory"), std::string::npos) << log;
  EXPECT_EQ(read_text(d / "one" / "000" / "log.txt").find(" ranks, sums through "), std::string::npos);
  EXPECT_TRUE(fs::exists(d / "two" / "report.md"));
}

// Ranks started with different LTH_DIST_SHM agree on Gloo instead of waiting on each
// other in two transports.
TEST(DataParallel, RanksDisagreeingOnSharedMemoryAllUseGloo) {
  TempDir dir("disagree");
  const auto d = dir.path();
  const auto ranks = start_ranks(d,
                                 {kWorker, "train", "--model", "lenet300_100", "--image_size", "28", "--channels", "1",
                                  "--prunable", "all", "--steps", "3", "--batch", "16", "--eval_every", "3", "--out",
                                  d.string()},
                                 2, 20, {{"LTH_DIST_SHM", {"1", "0"}}});
  for (int r = 0; r < 2; ++r) {
    const auto status = ranks[r]->wait_for(60s);
    ASSERT_TRUE(status.has_value()) << "rank " << r << " still running after 60 s";
    EXPECT_EQ(exit_code(status), 0) << read_text(d / ("r" + std::to_string(r) + ".err"));
  }
  const auto rank0 = io::load_checkpoint(d / "rank0.safetensors");
  const auto rank1 = io::load_checkpoint(d / "rank1.safetensors");
  for (const auto& [name, t] : rank0.state) EXPECT_TRUE(torch::equal(t, rank1.state.at(name))) << name;
}

// --- failures ---------------------------------------------------------------------------

// A rank SIGKILLed mid-training: its peer stops with one clear line, quickly, through
// shared memory (it sees the process gone) and through Gloo (it sees the socket close).
TEST(DataParallel, KilledPeerStopsTheOtherRankWithAClearError) {
  for (const std::string shm : {"1", "0"}) {
    SCOPED_TRACE("LTH_DIST_SHM=" + shm);
    TempDir dir("kill");
    const auto d = dir.path();
    const auto ranks = start_ranks(d,
                                   {kWorker, "train", "--model", "resnet20", "--steps", "1000000", "--eval_every",
                                    "1000000", "--out", d.string()},
                                   2, 10, {{"LTH_DIST_SHM", {shm, shm}}});
    // Rank 0 logs "start" once every rank has joined; then let a few steps run.
    ASSERT_TRUE(wait_until([&] { return fs::exists(d / "run" / "metrics.jsonl"); }, 20s))
        << read_text(d / "r0.err") << read_text(d / "r1.err");
    std::this_thread::sleep_for(500ms);
    ASSERT_FALSE(ranks[0]->wait_for(0ms)) << read_text(d / "r0.err");
    const auto killed_at = Clock::now();
    ranks[1]->signal(SIGKILL);  // not reaped until ~Subprocess: a zombie counts as gone
    const auto status = ranks[0]->wait_for(30s);
    const double seconds = std::chrono::duration<double>(Clock::now() - killed_at).count();
    ASSERT_TRUE(status.has_value()) << "rank 0 still running 30 s after its peer died";
    EXPECT_EQ(exit_code(status), 2);
    const auto err = read_text(d / "r0.err");
    EXPECT_NE(err.find("lth: rank 0: lost contact with peer"), std::string::npos) << err;
    EXPECT_NE(err.find("(timeout 10 s)"), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << "expected one line:\n" << err;
    // Well inside the timeout.
    EXPECT_LT(seconds, 8.0);
  }
}

// A peer that stops responding without closing its sockets or exiting (SIGSTOP): the
// collective's timeout fires (LTH_DIST_TIMEOUT = 3 s) instead of hanging, through shared
// memory and through Gloo.
TEST(DataParallel, StalledPeerTimesOut) {
  for (const std::string shm : {"1", "0"}) {
    SCOPED_TRACE("LTH_DIST_SHM=" + shm);
    TempDir dir("stall");
    const auto d = dir.path();
    const auto ranks = start_ranks(d, {kWorker, "allreduce_loop", "--ready", (d / "ready").string()}, 2, 3,
                                   {{"LTH_DIST_SHM", {shm, shm}}});
    ASSERT_TRUE(wait_until([&] { return fs::exists(d / "ready.0") && fs::exists(d / "ready.1"); }, 20s))
        << read_text(d / "r0.err") << read_text(d / "r1.err");
    const auto stopped_at = Clock::now();
    ranks[1]->signal(SIGSTOP);
    const auto status = ranks[0]->wait_for(25s);
    const double seconds = std::chrono::duration<double>(Clock::now() - stopped_at).count();
    ASSERT_TRUE(status.has_value()) << "rank 0 still running 25 s after its peer stalled";
    EXPECT_EQ(exit_code(status), 2);
    const auto err = read_text(d / "r0.err");
    EXPECT_NE(err.find("lth: rank 0: lost contact with peer during all_reduce"), std::string::npos) << err;
    EXPECT_NE(err.find("(timeout 3 s)"), std::string::npos) << err;
    EXPECT_GE(seconds, 2.5);
    EXPECT_LT(seconds, 20.0);
    // ~Subprocess SIGKILLs the stopped rank.
  }
}

// A rank whose peers never arrive gives up after the timeout, naming the rendezvous.
TEST(DataParallel, MissingPeerAtRendezvousTimesOut) {
  TempDir dir("alone");
  const auto d = dir.path();
  const int port = free_port();
  Subprocess rank0({kWorker, "allreduce_loop", "--ready", (d / "ready").string()}, rank_env(0, 2, port, 2),
                   d / "r0.out", d / "r0.err");
  const auto status = rank0.wait_for(20s);
  ASSERT_TRUE(status.has_value()) << "rank 0 waited more than 20 s for a peer that never came";
  EXPECT_EQ(exit_code(status), 2);
  const auto err = read_text(d / "r0.err");
  EXPECT_NE(err.find("lth: rank 0: "), std::string::npos) << err;
  EXPECT_NE(err.find("(timeout 2 s)"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "expected one line:\n" << err;
}

// --- environment ------------------------------------------------------------------------

using Vars = std::map<std::string, std::string>;

TEST(ProcessGroupEnv, NoWorldSizeMeansOneProcess) {
  ScopedEnvVars env(Vars{{"WORLD_SIZE", ""}, {"RANK", ""}, {"MASTER_ADDR", ""}, {"LTH_DIST_TIMEOUT", ""},
                         {"LTH_DIST_SHM", ""}, {"SLURM_NTASKS", ""}, {"SLURM_PROCID", ""}});
  const auto e = dist::read_process_group_env();
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.timeout.count(), 300);
  EXPECT_TRUE(e.shared_memory);
  auto comm = dist::make_communicator(torch::kCPU);
  EXPECT_EQ(comm->world_size(), 1);
  EXPECT_TRUE(comm->is_root());
  std::vector<torch::Tensor> v{torch::ones({3})};
  comm->all_reduce_sum(v);
  EXPECT_TRUE(torch::equal(v[0], torch::ones({3})));
}

TEST(ProcessGroupEnv, WorldSizeOneIsOneProcess) {
  ScopedEnvVars env(Vars{{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"MASTER_ADDR", ""}});
  EXPECT_EQ(dist::make_communicator(torch::kCPU)->world_size(), 1);
}

TEST(ProcessGroupEnv, ReadsTorchrunVariables) {
  ScopedEnvVars env(Vars{{"WORLD_SIZE", "16"}, {"RANK", "9"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"},
                         {"MASTER_PORT", "29511"}, {"LTH_DIST_TIMEOUT", "45"}, {"GLOO_SOCKET_IFNAME", "eth1"},
                         {"LTH_DIST_SHM", "0"}});
  const auto e = dist::read_process_group_env();
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.rank, 9);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29511);
  EXPECT_EQ(e.timeout.count(), 45);
  EXPECT_EQ(e.gloo_interfaces, "eth1");
  EXPECT_FALSE(e.shared_memory);
  EXPECT_EQ(dist::rank_device(torch::Device(torch::kCUDA), e), torch::Device(torch::kCUDA, 1));
  EXPECT_EQ(dist::rank_device(torch::Device(torch::kCUDA, 3), e), torch::Device(torch::kCUDA, 3));
  EXPECT_EQ(dist::rank_device(torch::kCPU, e), torch::Device(torch::kCPU));
}

void expect_env_error(const Vars& vars, const std::string& fragment) {
  ScopedEnvVars env(vars);
  try {
    dist::read_process_group_env();
    ADD_FAILURE() << "expected an error mentioning " << fragment;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ProcessGroupEnv, MalformedVariablesAreOneLineErrors) {
  const std::map<std::string, std::string> ok{{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "a"},
                                              {"MASTER_PORT", "1234"}, {"LTH_DIST_TIMEOUT", ""},
                                              {"LTH_DIST_SHM", ""}};
  auto with = [&](std::string k, std::string v) {
    auto m = ok;
    m[k] = v;
    return m;
  };
  expect_env_error(with("RANK", "2"), "RANK=2");
  expect_env_error(with("RANK", "x"), "RANK=x");
  expect_env_error(with("RANK", ""), "RANK is not set");
  expect_env_error(with("WORLD_SIZE", "0"), "WORLD_SIZE=0");
  expect_env_error(with("MASTER_ADDR", ""), "MASTER_ADDR is not set");
  expect_env_error(with("MASTER_PORT", "70000"), "MASTER_PORT=70000");
  expect_env_error(with("LTH_DIST_TIMEOUT", "0"), "LTH_DIST_TIMEOUT=0");
  expect_env_error(with("LTH_DIST_TIMEOUT", "5s"), "LTH_DIST_TIMEOUT=5s");
  expect_env_error(with("LTH_DIST_SHM", "yes"), "LTH_DIST_SHM=yes");
}

}  // namespace
}  // namespace lth::test
