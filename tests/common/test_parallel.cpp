#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/parallel.h"

namespace lth {
namespace {

// Restores LibTorch's thread count after a test changes it.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

// The reason lth has its own parallel_for: at::parallel_for compiled without -fopenmp runs on
// the caller alone. Two threads must really run concurrently: each chunk waits until the
// other has started (a serial run would wait forever, so the wait is bounded and checked).
TEST(ParallelFor, RunsChunksOnDistinctThreadsConcurrently) {
  const ThreadCount two(2);
  std::atomic<int> started{0};
  std::mutex m;
  std::set<std::thread::id> threads;
  std::set<int> ids;
  std::vector<int> covered(10, 0);
  bool both_running = true;
  parallel_for(0, 10, 1, [&](int64_t b, int64_t e) {
    ++started;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    std::lock_guard<std::mutex> lock(m);
    if (started.load() < 2) both_running = false;
    threads.insert(std::this_thread::get_id());
    ids.insert(at::get_thread_num());
    for (int64_t i = b; i < e; ++i) ++covered[static_cast<size_t>(i)];
  });
  EXPECT_TRUE(both_running);
  EXPECT_EQ(threads.size(), 2u);
  EXPECT_EQ(ids, (std::set<int>{0, 1}));
  for (int c : covered) EXPECT_EQ(c, 1);
}

TEST(ParallelFor, CoversTheRangeInContiguousChunksRespectingTheGrain) {
  const ThreadCount four(4);
  for (const int64_t grain : {1, 3, 7, 100}) {
    std::mutex m;
    std::vector<std::pair<int64_t, int64_t>> chunks;
    parallel_for(5, 25, grain, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(m);
      chunks.emplace_back(b, e);
    });
    std::sort(chunks.begin(), chunks.end());
    ASSERT_FALSE(chunks.empty());
    EXPECT_EQ(chunks.front().first, 5);
    EXPECT_EQ(chunks.back().second, 25);
    for (size_t i = 1; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].first, chunks[i - 1].second);
    EXPECT_LE(static_cast<int64_t>(chunks.size()), std::min<int64_t>(4, (20 + grain - 1) / grain));
  }
  int calls = 0;
  parallel_for(3, 3, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ParallelFor, NestedCallsRunInlineOnTheCallingThread) {
  const ThreadCount two(2);
  std::atomic<int> mismatches{0};
  parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    const auto outer = std::this_thread::get_id();
    const int outer_id = at::get_thread_num();
    EXPECT_TRUE(at::in_parallel_region());
    parallel_for(0, 100, 1, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() != outer || b != 0 || e != 100) ++mismatches;
    });
    if (at::get_thread_num() != outer_id) ++mismatches;
  });
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(ParallelFor, RethrowsAChunksExceptionAfterEveryChunkFinished) {
  const ThreadCount two(2);
  std::atomic<int> finished{0};
  EXPECT_THROW(parallel_for(0, 2, 1,
                            [&](int64_t b, int64_t) {
                              if (b == 1) throw std::runtime_error("chunk failed");
                              ++finished;
                            }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 1);
  // One thread: inline, and the exception passes straight through.
  const ThreadCount one(1);
  EXPECT_THROW(parallel_for(0, 4, 1, [](int64_t, int64_t) { throw std::runtime_error("x"); }),
               std::runtime_error);
}

}  // namespace lth
