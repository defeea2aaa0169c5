// Threads per rank: the cores a process counts (its affinity mask), what "--threads 0"
// means (OMP_NUM_THREADS, then SLURM_CPUS_PER_TASK), and the OMP_NUM_THREADS that
// `lth launch` gives each rank.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <sched.h>

#include "common/error.h"
#include "common/threads.h"
#include "scoped_env.h"
#include "subprocess.h"

namespace lth::test {
namespace {

using namespace std::chrono_literals;

using Vars = std::map<std::string, std::string>;

int affinity_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  return CPU_COUNT(&set);
}

// Narrows the calling thread to one CPU for its lifetime (children spawned meanwhile
// inherit the narrow mask, as under `taskset -c N`).
class OneCpu {
 public:
  OneCpu() {
    ::sched_getaffinity(0, sizeof saved_, &saved_);
    int first = 0;
    while (!CPU_ISSET(first, &saved_)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    EXPECT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
  }
  ~OneCpu() { ::sched_setaffinity(0, sizeof saved_, &saved_); }
  OneCpu(const OneCpu&) = delete;
  OneCpu& operator=(const OneCpu&) = delete;

 private:
  cpu_set_t saved_;
};

TEST(Threads, HardwareThreadsIsTheAffinityMask) {
  EXPECT_EQ(hardware_threads(), affinity_count());
  {
    OneCpu narrow;
    EXPECT_EQ(hardware_threads(), 1);
  }
  EXPECT_EQ(hardware_threads(), affinity_count());
}

TEST(Threads, DefaultHonoursOmpThenSlurm) {
  {
    ScopedEnvVars env({{"OMP_NUM_THREADS", ""}, {"SLURM_CPUS_PER_TASK", ""}});
    EXPECT_EQ(default_threads(), hardware_threads());
    EXPECT_EQ(configure_threads(0), hardware_threads());
  }
  {
    ScopedEnvVars env({{"OMP_NUM_THREADS", "3"}, {"SLURM_CPUS_PER_TASK", "1"}});
    EXPECT_EQ(default_threads(), 3);  // the user's (or lth launch's) count wins, even above the cores
    EXPECT_EQ(configure_threads(0), 3);
    EXPECT_EQ(at::get_num_threads(), 3);
    EXPECT_EQ(configure_threads(2), 2);  // an explicit --threads wins over everything
  }
  {
    ScopedEnvVars env(Vars{{"OMP_NUM_THREADS", "4,2"}});  // OpenMP's nested list: the outer level
    EXPECT_EQ(default_threads(), 4);
  }
  {
    ScopedEnvVars env({{"OMP_NUM_THREADS", ""}, {"SLURM_CPUS_PER_TASK", "1"}});
    EXPECT_EQ(default_threads(), 1);
  }
  {
    // Slurm's count is capped by the cores the process may use.
    ScopedEnvVars env({{"OMP_NUM_THREADS", ""}, {"SLURM_CPUS_PER_TASK", "4096"}});
    EXPECT_EQ(default_threads(), hardware_threads());
  }
  configure_threads(1);
}

TEST(Threads, MalformedCountsAreOneLineErrors) {
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"OMP_NUM_THREADS", "x"}, {"OMP_NUM_THREADS", "0"}, {"OMP_NUM_THREADS", "-2"},
           {"OMP_NUM_THREADS", "2x"}, {"SLURM_CPUS_PER_TASK", "0"}, {"SLURM_CPUS_PER_TASK", "many"}}) {
    Vars vars{{"OMP_NUM_THREADS", ""}, {"SLURM_CPUS_PER_TASK", ""}};
    vars[name] = value;
    ScopedEnvVars env(vars);
    try {
      default_threads();
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()), "environment variable " + name + "=" + value +
                                           ": expected a thread count in [1, 65536]");
    }
  }
}

// Runs `lth launch --nproc N -- sh -c 'echo $OMP_NUM_THREADS'` and returns each rank's line.
std::vector<std::string> launched_threads(int nproc, const std::map<std::string, std::string>& env) {
  TempDir dir("threads_" + std::to_string(nproc));
  const auto d = dir.path();
  auto vars = env;
  vars["D"] = d.string();
  Subprocess p({kWorker, "launch", "--nproc", std::to_string(nproc), "--", "/bin/sh", "-c",
                R"(echo "$OMP_NUM_THREADS" > "$D/t.$RANK")"},
               vars, d / "out", d / "err");
  EXPECT_EQ(exit_code(p.wait_for(20s)), 0) << read_text(d / "err");
  std::vector<std::string> lines;
  for (int r = 0; r < nproc; ++r) lines.push_back(read_text(d / ("t." + std::to_string(r))));
  return lines;
}

TEST(Threads, LaunchGivesEachRankItsShareOfTheCores) {
  const int cores = affinity_count();
  const auto share = std::to_string(std::max(1, cores / 2)) + "\n";
  EXPECT_EQ(launched_threads(2, {{"OMP_NUM_THREADS", ""}}), std::vector<std::string>({share, share}));
  EXPECT_EQ(launched_threads(1, {{"OMP_NUM_THREADS", ""}}), std::vector<std::string>({std::to_string(cores) + "\n"}));
  // More ranks than cores: at least one thread each.
  const int many = cores + 1;
  EXPECT_EQ(launched_threads(many, {{"OMP_NUM_THREADS", ""}}), std::vector<std::string>(many, "1\n"));
  // The launcher's own mask, not the machine's: under a one-CPU mask a single rank gets 1.
  {
    OneCpu narrow;
    EXPECT_EQ(launched_threads(1, {{"OMP_NUM_THREADS", ""}}), std::vector<std::string>({"1\n"}));
  }
  // A count the user set is passed through untouched.
  EXPECT_EQ(launched_threads(2, {{"OMP_NUM_THREADS", "7"}}), std::vector<std::string>({"7\n", "7\n"}));
}

}  // namespace
}  // namespace lth::test
