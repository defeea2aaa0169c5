#pragma once
// The visiting order of a dataset stored as shard files, as TFDS and WebDataset readers
// visit it: each rank reads its own files, and records pass through a shuffle buffer.
//
//  - Sharding by rank: with at least as many files as ranks, rank r reads whole files
//    f = r, r + W, r + 2W, ... (fixed across epochs, so a rank's files stay in its page
//    cache); with fewer files than ranks, every rank reads every file and keeps the records
//    whose position in the split is r mod W. Either way the ranks are disjoint and together
//    cover the split once per epoch.
//  - Shuffling: the rank's file order is permuted by Rng::keyed(seed, "shard_files", epoch, r),
//    then the records stream through a buffer of `shuffle_buffer` records that emits a
//    uniformly chosen one as each new one arrives (tf.data's Dataset.shuffle, WebDataset's
//    shuffle()), drawing from Rng::keyed(seed, "shuffle_buffer", epoch, r).
// The order is a pure function of (layout, seed, epoch, rank, world size): the loader
// computes it without reading data, so a run resumed mid-epoch continues exactly.
// Loaders truncate every rank to the smallest rank's count, so all ranks take the same
// number of steps (tf.data's drop_remainder on uneven shards would otherwise hang DDP).
#include <cstdint>
#include <vector>

namespace lth::data::shards {

struct ShardLayout {
  std::vector<int64_t> records_per_file;  // in the dataset's index order; empty = not sharded
  int64_t shuffle_buffer = 10000;
};

// Implemented by datasets that want the streaming order in training (data/loader.h asks).
class ShardOrdered {
 public:
  virtual ~ShardOrdered() = default;
  virtual ShardLayout shard_layout() const = 0;
};

int64_t rank_sample_count(const ShardLayout& layout, int rank, int world_size);
// Dataset indices rank `rank` visits in `epoch`, in order.
std::vector<int64_t> rank_order(const ShardLayout& layout, uint64_t seed, int64_t epoch, int rank,
                                int world_size, bool shuffle);

}  // namespace lth::data::shards
