#pragma once
// Writes samples (encoded image files + labels) as shards, in the order given, cut into
// shards of `shard_size` samples (at least one shard, possibly empty):
//   TFRecord: <dir>/<builder>-<split>.tfrecord-NNNNN-of-MMMMM, tf.train.Example records with
//             "image" (the file's bytes), "label" (int64) and "file_name" (bytes), as TFDS's
//             ImageNet builds store them;
//   WebDataset: <dir>/<prefix>-NNNNNN.tar, members <key>.<ext> (the file's bytes, extension
//             lowercased) and <key>.cls (the label as decimal text).
// Files are written under a temporary name and renamed, so an interrupted conversion never
// leaves a shard that looks complete; with `resume`, a shard already in place under its final
// name is kept (its samples skipped), so a rerun continues where an interrupted one stopped.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lth::data::shards {

struct SourceSample {
  std::filesystem::path path;
  int64_t label = 0;  // as stored in the shard
  std::string key;    // WebDataset key (unique per split); "" = derived from the path
  // A picture inside another file (a member of the official ILSVRC2012 tars): `size` bytes at
  // `offset` of `path`, named `file_name`. size < 0: the whole file `path`.
  uint64_t offset = 0;
  int64_t size = -1;
  std::string file_name;
};

// Returns the samples per shard (dataset_info.json's shardLengths).
std::vector<int64_t> write_tfrecord_shards(const std::vector<SourceSample>& samples,
                                           const std::filesystem::path& dir, const std::string& builder,
                                           const std::string& split, int64_t shard_size, bool resume = false);
std::vector<int64_t> write_webdataset_shards(const std::vector<SourceSample>& samples,
                                             const std::filesystem::path& dir, const std::string& prefix,
                                             int64_t shard_size, bool resume = false);

}  // namespace lth::data::shards
