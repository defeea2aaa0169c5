// Ranks started by Slurm's srun: hostlist expansion, the variables' precedence, and two
// real ranks (lth_dist_worker processes) that meet through Slurm's variables alone.
#include <gtest/gtest.h>
#include <torch/types.h>

#include "common/error.h"
#include "dist/process_group.h"
#include "dist/slurm_env.h"
#include "io/checkpoint.h"
#include "scoped_env.h"
#include "subprocess.h"

namespace lth::test {
namespace {

using namespace std::chrono_literals;
using Hosts = std::vector<std::string>;


Hosts expand(const std::string& list) { return dist::expand_hostlist(list, "SLURM_JOB_NODELIST"); }

TEST(SlurmHostlist, Expands) {
  EXPECT_EQ(expand("node1"), Hosts({"node1"}));
  EXPECT_EQ(expand("a,b,c"), Hosts({"a", "b", "c"}));
  EXPECT_EQ(expand("node[001-004,007]"), Hosts({"node001", "node002", "node003", "node004", "node007"}));
  EXPECT_EQ(expand("gpu-a[1-2]"), Hosts({"gpu-a1", "gpu-a2"}));
  EXPECT_EQ(expand("node[001-004,007],gpu-a[1-2]"),
            Hosts({"node001", "node002", "node003", "node004", "node007", "gpu-a1", "gpu-a2"}));
  // Padding is the width of the range's first bound, and a range may grow past it.
  EXPECT_EQ(expand("n[08-11]"), Hosts({"n08", "n09", "n10", "n11"}));
  EXPECT_EQ(expand("n[8-11]"), Hosts({"n8", "n9", "n10", "n11"}));
  // Several bracket groups: every combination, the last group varying fastest.
  EXPECT_EQ(expand("rack[1-2]-n[01-02]"), Hosts({"rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"}));
  EXPECT_EQ(expand("r[1-2]n[3,5]x"), Hosts({"r1n3x", "r1n5x", "r2n3x", "r2n5x"}));
  EXPECT_EQ(expand("my-long.host-name,x[7]"), Hosts({"my-long.host-name", "x7"}));
  EXPECT_EQ(expand("127.0.0.1"), Hosts({"127.0.0.1"}));
  EXPECT_EQ(expand("c[0-9999]").size(), 10000u);
}

TEST(SlurmHostlist, MalformedIsOneLineErrorNamingTheVariable) {
  for (const std::string bad : {"", "node[1-2", "node1-2]", "node[[1]]", "node[]", "node[1-]", "node[-3]",
                                "node[3-1]", "node[a-b]", "node[1,,2]", "a,,b", "a,", ",a", "node[1-2]x[",
                                "node 1", "n[1-2:2]", "n[0-9999999]"}) {
    try {
      dist::expand_hostlist(bad, "SLURM_STEP_NODELIST");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const UserError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(what.rfind("environment variable SLURM_STEP_NODELIST=" + bad + ": malformed Slurm host list (", 0), 0u)
          << what;
    }
  }
}

TEST(SlurmEnv, PortIsDerivedFromTheJobId) {
  EXPECT_EQ(dist::slurm_port(0), 15000);
  EXPECT_EQ(dist::slurm_port(123456), 18456);
  EXPECT_EQ(dist::slurm_port(9999), 24999);
  EXPECT_EQ(dist::slurm_port(10000), 15000);
}

// Every variable either path reads, cleared, plus `vars`.
std::map<std::string, std::string> only(std::map<std::string, std::string> vars) {
  std::map<std::string, std::string> env{{"RANK", ""},          {"WORLD_SIZE", ""},          {"LOCAL_RANK", ""},
                                         {"MASTER_ADDR", ""},   {"MASTER_PORT", ""},         {"SLURM_PROCID", ""},
                                         {"SLURM_NTASKS", ""},  {"SLURM_LOCALID", ""},       {"SLURM_JOB_ID", ""},
                                         {"SLURM_JOB_NODELIST", ""}, {"SLURM_STEP_NODELIST", ""},
                                         {"LTH_DIST_TIMEOUT", ""}, {"GLOO_SOCKET_IFNAME", ""}};
  for (const auto& [k, v] : vars) env[k] = v;
  return env;
}

const std::map<std::string, std::string> kSlurmTask{{"SLURM_PROCID", "5"},
                                                    {"SLURM_NTASKS", "8"},
                                                    {"SLURM_LOCALID", "1"},
                                                    {"SLURM_JOB_ID", "4242"},
                                                    {"SLURM_JOB_NODELIST", "gpu-a[003-004,009],cpu[1-2]"},
                                                    {"SLURM_STEP_NODELIST", "other[1-2]"}};

std::map<std::string, std::string> slurm_plus(std::map<std::string, std::string> extra) {
  auto env = kSlurmTask;
  for (const auto& [k, v] : extra) env[k] = v;
  return only(env);
}

TEST(SlurmEnv, SlurmTaskWithoutTorchrunVariables) {
  ScopedEnvVars env(slurm_plus({{"LTH_DIST_TIMEOUT", "40"}, {"GLOO_SOCKET_IFNAME", "ib0"}}));
  const auto e = dist::read_process_group_env();
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "gpu-a003");  // the job's first host, not the step's
  EXPECT_EQ(e.master_port, 19242);       // 15000 + 4242
  EXPECT_EQ(e.timeout.count(), 40);
  EXPECT_EQ(e.gloo_interfaces, "ib0");
  EXPECT_EQ(dist::rank_device(torch::Device(torch::kCUDA), e), torch::Device(torch::kCUDA, 1));
}

TEST(SlurmEnv, StepNodeListWhenNoJobNodeList) {
  ScopedEnvVars env(slurm_plus({{"SLURM_JOB_NODELIST", ""}}));
  EXPECT_EQ(dist::read_process_group_env().master_addr, "other1");
}

TEST(SlurmEnv, MasterAddrAndPortOverrideTheDerivedOnes) {
  ScopedEnvVars env(slurm_plus({{"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "29999"}}));
  const auto e = dist::read_process_group_env();
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.master_addr, "10.1.2.3");
  EXPECT_EQ(e.master_port, 29999);
}

// `lth launch` (or torchrun) inside a Slurm job: its variables win over Slurm's.
TEST(SlurmEnv, TorchrunVariablesWin) {
  ScopedEnvVars env(slurm_plus(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}}));
  const auto e = dist::read_process_group_env();
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.master_port, 1234);
  // WORLD_SIZE alone (RANK missing) is still the torchrun path's error, not Slurm's ranks.
  ScopedEnvVars half(slurm_plus({{"WORLD_SIZE", "2"}}));
  EXPECT_THROW(dist::read_process_group_env(), UserError);
}

TEST(SlurmEnv, SingleTaskAndNonSlurmAreOneProcess) {
  {
    ScopedEnvVars env(only({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));  // no node list needed
    EXPECT_EQ(dist::read_process_group_env().world_size, 1);
  }
  {
    ScopedEnvVars env(only({{"SLURM_JOB_ID", "7"}, {"SLURM_JOB_NODELIST", "n[1-2]"}}));  // no task ids
    EXPECT_EQ(dist::read_process_group_env().world_size, 1);
  }
}

void expect_error(const std::map<std::string, std::string>& vars, const std::string& fragment) {
  ScopedEnvVars env(slurm_plus(vars));
  try {
    dist::read_process_group_env();
    ADD_FAILURE() << "expected an error mentioning " << fragment;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

TEST(SlurmEnv, MalformedVariablesAreOneLineErrors) {
  expect_error({{"SLURM_PROCID", "8"}}, "SLURM_PROCID=8");
  expect_error({{"SLURM_PROCID", "x"}}, "SLURM_PROCID=x");
  expect_error({{"SLURM_NTASKS", "0"}}, "SLURM_NTASKS=0");
  expect_error({{"SLURM_LOCALID", "-1"}}, "SLURM_LOCALID=-1");
  expect_error({{"SLURM_JOB_ID", "12a"}}, "SLURM_JOB_ID=12a");
  expect_error({{"SLURM_JOB_NODELIST", "n[1-"}}, "SLURM_JOB_NODELIST=n[1-: malformed Slurm host list");
  expect_error({{"SLURM_JOB_NODELIST", ""}, {"SLURM_STEP_NODELIST", ""}}, "neither MASTER_ADDR nor SLURM_JOB_NODELIST");
  expect_error({{"SLURM_JOB_ID", ""}}, "neither MASTER_PORT nor SLURM_JOB_ID");
  expect_error({{"MASTER_PORT", "0"}}, "MASTER_PORT=0");
}

bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Two ranks given only what srun sets (no RANK, WORLD_SIZE, MASTER_*): they meet on the
// node list's first host at the port derived from the job id, and train as one
// data-parallel run: 2 ranks x 16 equal 1 process x 32 (LeNet, no BN).
TEST(SlurmEnv, TwoRanksJoinThroughSlurmVariablesOnly) {
  TempDir dir("slurm_join");
  const auto d = dir.path();
  const std::vector<std::string> train = {"train", "--model", "lenet300_100", "--image_size", "28",
                                          "--channels", "1", "--prunable", "all", "--steps", "4",
                                          "--batch", "32", "--eval_every", "4"};
  auto cmd = [&](const std::string& out) {
    std::vector<std::string> args{kWorker};
    args.insert(args.end(), train.begin(), train.end());
    args.insert(args.end(), {"--out", (d / out).string()});
    return args;
  };
  uint64_t job = 9000000 + static_cast<uint64_t>(::getpid()) % 10000;
  for (int tries = 0; tries < 100 && !port_is_free(dist::slurm_port(job)); ++tries) ++job;
  ASSERT_TRUE(port_is_free(dist::slurm_port(job)));

  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 2; ++r) {
    auto env = only({{"SLURM_PROCID", std::to_string(r)},
                     {"SLURM_NTASKS", "2"},
                     {"SLURM_LOCALID", std::to_string(r)},
                     {"SLURM_JOB_ID", std::to_string(job)},
                     {"SLURM_JOB_NODELIST", "localhost,node[002-003]"},
                     {"LTH_DIST_TIMEOUT", "30"},
                     {"OMP_NUM_THREADS", "1"}});
    const auto name = "rank" + std::to_string(r);
    ranks.push_back(std::make_unique<Subprocess>(cmd("two"), env, d / (name + ".out"), d / (name + ".err")));
  }
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(exit_code(ranks[r]->wait_for(60s)), 0) << "rank " << r << ":\n" << read_text(d / ("rank" + std::to_string(r) + ".err"));
  }
  Subprocess one(cmd("one"), only({{"OMP_NUM_THREADS", "1"}}), d / "one.out", d / "one.err");
  ASSERT_EQ(exit_code(one.wait_for(60s)), 0) << read_text(d / "one.err");

  // rank1.safetensors exists only if the second process really was rank 1 of a group.
  const auto r0 = io::load_checkpoint(d / "two" / "rank0.safetensors");
  const auto r1 = io::load_checkpoint(d / "two" / "rank1.safetensors");
  const auto single = io::load_checkpoint(d / "one" / "rank0.safetensors");
  ASSERT_FALSE(r0.state.empty());
  for (const auto& [name, t] : r0.state) {
    EXPECT_TRUE(torch::equal(t, r1.state.at(name))) << name;
    EXPECT_TRUE(torch::allclose(t, single.state.at(name), 1e-5, 1e-5))
        << name << ": max |diff| " << (t - single.state.at(name)).abs().max().item<double>();
  }
}

}  // namespace
}  // namespace lth::test
