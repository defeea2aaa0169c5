// The shared-memory group that ranks on one machine sum through (dist/shared_memory_group.h),
// with threads as ranks: every rank receives ((x0 + x1) + x2) + ... bit for bit, through
// the direct path, the reduce-scatter path and chunking, over many back-to-back calls (the
// double-buffered slots), and an absent peer ends in PeerLost within the timeout. Its use
// by real processes is in test_process_group.cpp.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/types.h>
#include <torch/utils.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <thread>

#include "dist/shared_memory_group.h"

namespace lth::dist {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string unique_name() {
  static std::atomic<int> counter{0};
  return "/lth-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Runs body(rank, group) on `world` threads, one group per rank (rank 0 creates, the others
// open after it), and rethrows the first failure.
void run_ranks(int world, int64_t slot_bytes, std::chrono::milliseconds timeout,
               const std::function<void(int, SharedMemoryGroup&)>& body) {
  const auto name = unique_name();
  auto options = [&](int rank) {
    SharedMemoryOptions o;
    o.rank = rank;
    o.world_size = world;
    o.timeout = timeout;
    o.slot_bytes = slot_bytes;
    return o;
  };
  std::vector<std::unique_ptr<SharedMemoryGroup>> groups;
  groups.push_back(SharedMemoryGroup::create(name, options(0)));
  for (int r = 1; r < world; ++r) groups.push_back(SharedMemoryGroup::open(name, options(r)));
  groups[0]->unlink_name();
  std::vector<std::exception_ptr> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(r, *groups[r]);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Rank r's input of call `call`: distinct per rank and call, with magnitudes spread so that
// the order of the sum changes float results.
torch::Tensor input(int rank, int call, int64_t numel, c10::ScalarType dtype) {
  torch::manual_seed(1000 * call + rank);
  auto x = torch::randn({numel}, torch::kFloat64) * torch::pow(10.0, torch::randint(-4, 5, {numel}).to(torch::kFloat64));
  if (c10::isIntegralType(dtype, false)) x = (x * 1000).round();
  return x.to(dtype);
}

torch::Tensor rank_order_sum(int world, int call, int64_t numel, c10::ScalarType dtype) {
  auto sum = input(0, call, numel, dtype) + input(1, call, numel, dtype);
  for (int r = 2; r < world; ++r) sum = sum + input(r, call, numel, dtype);
  return sum;
}

// `calls` sums on `world` ranks, sizes and dtypes cycling through the lists; with
// `barriers`, a barrier() after every odd call (barriers and sums share the generations).
void expect_rank_order_sums(int world, int64_t slot_bytes, const std::vector<int64_t>& sizes,
                            const std::vector<c10::ScalarType>& dtypes, int calls, bool barriers = false) {
  // The expected sums, computed before the ranks start (torch's RNG is global).
  std::vector<torch::Tensor> inputs, expected;
  for (int call = 0; call < calls; ++call) {
    const auto numel = sizes[call % sizes.size()];
    const auto dtype = dtypes[call % dtypes.size()];
    expected.push_back(rank_order_sum(world, call, numel, dtype));
    for (int r = 0; r < world; ++r) inputs.push_back(input(r, call, numel, dtype));
  }
  std::vector<std::vector<torch::Tensor>> results(world);
  run_ranks(world, slot_bytes, 20s, [&](int rank, SharedMemoryGroup& group) {
    for (int call = 0; call < calls; ++call) {
      auto t = inputs[call * world + rank].clone();
      group.all_reduce_sum(t);
      results[rank].push_back(t);
      if (barriers && call % 2 == 1) group.barrier();
    }
  });
  for (int r = 0; r < world; ++r) {
    for (int call = 0; call < calls; ++call) {
      EXPECT_TRUE(torch::equal(results[r][call], expected[call]))
          << "rank " << r << " call " << call << " (" << expected[call].numel() << " of "
          << expected[call].scalar_type() << ")";
    }
  }
}

TEST(SharedMemoryGroup, TwoRanksSumBitForBitOverManyCalls) {
  expect_rank_order_sums(2, 64 << 10, {1, 7, 1000, 40000}, {torch::kFloat32, torch::kFloat64, torch::kInt64}, 60);
}

// Three ranks: the order of the sum matters for floats, and the result is the rank-order
// one on every rank. 1.5 M elements in 2 MiB slots: several chunks, each above the
// direct-sum threshold (reduce-scatter, then all-gather) for float32, bf16 and int64 alike;
// small tensors take the direct path; barriers in between.
TEST(SharedMemoryGroup, ThreeRanksSumInRankOrderThroughBothPaths) {
  const auto world = 3;
  const int64_t big = 1500000;
  auto a = rank_order_sum(world, 0, big, torch::kFloat32);
  auto reversed = input(2, 0, big, torch::kFloat32) + input(1, 0, big, torch::kFloat32) + input(0, 0, big, torch::kFloat32);
  ASSERT_FALSE(torch::equal(a, reversed)) << "inputs too tame: the order of the sum must show";
  expect_rank_order_sums(world, 2 << 20, {big, 5, 33333, 777}, {torch::kFloat32, torch::kBFloat16, torch::kInt64},
                         12, /*barriers=*/true);
}

TEST(SharedMemoryGroup, FourRanksWithUnevenSegments) {
  // 1,000,003 floats (4,000,012 bytes, one chunk of a 4 MiB slot, reduce-scatter): four
  // segments, not all of one length.
  expect_rank_order_sums(4, 4 << 20, {1000003, 3}, {torch::kFloat32, torch::kInt32}, 4);
}

// A lost wake-up would not fail a sum (sleeps end every 100 ms) but would make barriers
// slow: 20 of these 100 make a rank sleep on the futex, and lost wake-ups there would cost
// at least 2 s.
TEST(SharedMemoryGroup, BarriersDoNotWaitOutTheirSleep) {
  const auto start = Clock::now();
  run_ranks(2, 64 << 10, 20s, [&](int rank, SharedMemoryGroup& group) {
    for (int i = 0; i < 100; ++i) {
      if (rank == i % 2 && i % 5 == 0) std::this_thread::sleep_for(2ms);  // make the other one sleep
      group.barrier();
    }
  });
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 1.5);
}

// Ranks that disagree on a collective (sizes, dtypes) fail on every rank instead of
// summing stale bytes.
TEST(SharedMemoryGroup, RanksDisagreeingOnTheTensorFail) {
  std::vector<std::string> errors(2);
  run_ranks(2, 64 << 10, 20s, [&](int rank, SharedMemoryGroup& group) {
    auto t = torch::ones({rank == 0 ? 10 : 12});
    try {
      group.all_reduce_sum(t);
    } catch (const std::invalid_argument& e) {
      errors[rank] = e.what();
    }
  });
  EXPECT_EQ(errors[0], "shared memory all-reduce: rank 1 sums 48 bytes of Float where rank 0 sums 40 bytes of Float");
  EXPECT_EQ(errors[1], "shared memory all-reduce: rank 0 sums 40 bytes of Float where rank 1 sums 48 bytes of Float");
}

TEST(SharedMemoryGroup, BarrierWaitsForTheSlowestRank) {
  std::atomic<int> arrived{0};
  std::vector<int> seen(3, -1);
  run_ranks(3, 64 << 10, 20s, [&](int rank, SharedMemoryGroup& group) {
    for (int round = 0; round < 20; ++round) {
      if (rank == 2 && round % 5 == 0) std::this_thread::sleep_for(20ms);
      ++arrived;
      group.barrier();
      // Nobody leaves round `round` before all 3 ranks arrived at it.
      if (arrived.load() < 3 * (round + 1)) seen[rank] = round;
      group.barrier();
    }
  });
  EXPECT_EQ(seen, std::vector<int>(3, -1));
}

TEST(SharedMemoryGroup, AbsentPeerEndsInPeerLostWithinTheTimeout) {
  const auto start = Clock::now();
  try {
    run_ranks(2, 64 << 10, 300ms, [&](int rank, SharedMemoryGroup& group) {
      if (rank == 0) {
        auto t = torch::ones({10});
        group.all_reduce_sum(t);
      }
    });
    FAIL() << "expected PeerLost";
  } catch (const PeerLost& e) {
    EXPECT_EQ(std::string(e.what()), "rank 1 did not arrive");
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(seconds, 0.29);
  EXPECT_LT(seconds, 5.0);
}

TEST(SharedMemoryGroup, NameIsGoneOnceUnlinkedAndOtherShapesAreRefused) {
  const auto name = unique_name();
  SharedMemoryOptions o;
  o.world_size = 2;
  auto creator = SharedMemoryGroup::create(name, o);
  EXPECT_EQ(creator->slot_bytes(), default_slot_bytes(2));
  // The same name cannot be created twice (another job's segment is never reused).
  EXPECT_THROW(SharedMemoryGroup::create(name, o), std::runtime_error);
  o.rank = 1;
  o.world_size = 3;
  try {
    SharedMemoryGroup::open(name, o);
    FAIL() << "opened a 2-rank segment as 3 ranks";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not the segment of 3 ranks"), std::string::npos) << e.what();
  }
  o.world_size = 2;
  auto peer = SharedMemoryGroup::open(name, o);
  creator->unlink_name();
  EXPECT_LT(::shm_open(name.c_str(), O_RDWR, 0), 0);
  EXPECT_THROW(SharedMemoryGroup::open(name, o), std::runtime_error);
  // Both mappings still work after the name is gone.
  std::thread other([&] {
    auto t = torch::full({4}, 2.0);
    peer->all_reduce_sum(t);
  });
  auto t = torch::full({4}, 1.0);
  creator->all_reduce_sum(t);
  other.join();
  EXPECT_TRUE(torch::equal(t, torch::full({4}, 3.0)));
}

// A segment left by a killed job (its creator's pid gone, over a minute old) is removed when
// the next group is created; a live job's, or a fresh one, is left alone.
TEST(SharedMemoryGroup, StaleSegmentsOfKilledJobsAreRemoved) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // `child` is now a pid without a process
  auto make = [](const std::string& name, bool old) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << name;
    if (old) {
      const timespec times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 120, 0}};
      ASSERT_EQ(::futimens(fd, times), 0);
    }
    ::close(fd);
  };
  auto exists = [](const std::string& name) { return std::filesystem::exists("/dev/shm" + name); };
  const auto dead_old = "/lth-1-" + std::to_string(child) + "-00c0ffee";
  const auto dead_new = "/lth-2-" + std::to_string(child) + "-00c0ffee";
  const auto live_old = "/lth-3-" + std::to_string(::getpid()) + "-00c0ffee";
  make(dead_old, true);
  make(dead_new, false);
  make(live_old, true);
  SharedMemoryOptions o;
  o.world_size = 2;
  auto group = SharedMemoryGroup::create(unique_name(), o);
  EXPECT_FALSE(exists(dead_old));
  EXPECT_TRUE(exists(dead_new));
  EXPECT_TRUE(exists(live_old));
  for (const auto& name : {dead_old, dead_new, live_old}) ::shm_unlink(name.c_str());
}

TEST(SharedMemoryGroup, SlotsShrinkSoTheSegmentFitsSmallShm) {
  EXPECT_EQ(default_slot_bytes(2), 2 << 20);
  for (int world : {2, 8, 16, 64, 256}) {
    EXPECT_LE(shared_memory_bytes(world, default_slot_bytes(world)), size_t{33} << 20) << world;
    EXPECT_EQ(default_slot_bytes(world) % 4096, 0) << world;
  }
  EXPECT_FALSE(SharedMemoryGroup::supports(torch::ones({2}, torch::kBool)));
  EXPECT_TRUE(SharedMemoryGroup::supports(torch::ones({2}, torch::kBFloat16)));
}

}  // namespace
}  // namespace lth::dist
