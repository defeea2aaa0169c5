#pragma once
// Turns a Dataset into a stream of uint8 batches, with worker threads and a bounded
// prefetch window.
//
// Order and randomness: epoch e visits a permutation drawn from Rng::keyed(seed, "shuffle", e)
// (identity when !shuffle); sample i of epoch e gets Rng::keyed(seed, "sample", e, i) for its
// augmentation. So a batch's content depends only on (seed, epoch, batch index), never on the
// number of workers, and a loader started at (epoch, batch) continues an interrupted run exactly.
//
// Sharding: a *global* batch of `batch_size` samples is cut into world_size equal slices and
// rank r reads slice r, so ranks are disjoint and together see every sample once per epoch.
// Training drops the last partial global batch; evaluation (drop_last = false) deals samples
// round-robin (sample i to rank i % world_size) and covers each exactly once.
//
// Shards: a dataset that is shards::ShardOrdered with a non-empty layout is visited, in
// training (drop_last), in the TFDS/WebDataset order of data/shards/stream_order.h instead:
// rank r reads its own files through a shuffle buffer, a pure function of (seed, epoch, rank),
// so resuming is exact too; every rank takes as many batches as the smallest rank's share.
//
// Unreadable samples (Dataset::get returns nullopt) are left out of their batch and counted
// in Batch::skipped; exceptions from a worker (strict mode) are rethrown by next().
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/shards/stream_order.h"

namespace lth::data {

struct LoaderOptions {
  int64_t batch_size = 128;  // global batch, across all ranks
  int num_workers = 2;       // 0 = load in the calling thread
  int prefetch_factor = 2;   // batches in flight per worker
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;     // training: true; evaluation: false
  bool repeat = true;        // training: cycle through epochs forever
  int rank = 0;
  int world_size = 1;
};

struct Batch {
  torch::Tensor images;  // uint8 [n, H, W, C], this rank's slice
  torch::Tensor labels;  // int64 [n]
  int64_t epoch = 0;
  int64_t index = 0;     // batch index within the epoch
  int64_t skipped = 0;   // unreadable samples left out of this batch
};

// Where a training stream stands; saved in checkpoints to resume mid-epoch.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // next batch to produce within `epoch`
};

class Loader {
 public:
  Loader(DatasetPtr dataset, LoaderOptions options, LoaderPosition start = {});
  ~Loader();  // stops and joins the workers; never hangs on a full queue
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch, or nullopt at the end (only when !repeat).
  std::optional<Batch> next();
  // Position of the next batch next() will return.
  LoaderPosition position() const;
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  const LoaderOptions& options() const { return options_; }

 private:
  struct Ticket {  // the k-th batch of the stream, from the starting position
    int64_t epoch;
    int64_t index;
  };
  Ticket ticket(int64_t k) const;
  bool finite_end(int64_t k) const;
  using Order = std::shared_ptr<const std::vector<int64_t>>;
  std::vector<int64_t> indices_of(const Ticket& t) const;
  Batch load(const Ticket& t) const;
  Order permutation(int64_t epoch) const;
  void worker_loop();

  DatasetPtr dataset_;
  LoaderOptions options_;
  LoaderPosition start_;
  int64_t batches_per_epoch_ = 0;
  int64_t per_rank_batch_ = 0;
  shards::ShardLayout shard_layout_;  // non-empty records_per_file: per-rank stream order

  mutable std::mutex perm_mutex_;
  // epoch -> visiting order. Shared so a worker keeps its order alive while another evicts it.
  mutable std::map<int64_t, Order> permutations_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable ready_cv_;
  std::map<int64_t, Batch> ready_;  // finished batches awaiting their turn
  int64_t next_to_claim_ = 0;
  int64_t next_to_return_ = 0;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace lth::data
