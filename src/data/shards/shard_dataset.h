#pragma once
// A Dataset over shard files (TFRecord of tf.train.Example, or WebDataset tar), read in
// place. Opening indexes the files (record / member headers only); get(i) reads sample i's
// bytes with one positioned read, checks them (record CRC), decodes the features and runs
// the same decode + transform as the folder reader (pipeline.h).
//
// Index order: files in the given order, records in file order. Shards written by
// `lth make-shards` from a folder keep the folder's (class, file name) order, so the same
// loader seed gives the same batches as the folder layout when the loader uses its global
// permutation (`order = global`). With `order = stream` (the default for shards) training
// uses the TFDS/WebDataset order of stream_order.h instead.
//
// Damage: a file whose framing breaks (truncated, bad length CRC, bad tar header) keeps the
// samples before the break, and the opener logs one warning naming file and offset; a
// record whose data CRC fails, a missing feature, or an undecodable image makes get()
// return nullopt after one warning line and counts in unreadable(). With `strict`, each of
// these is a UserError naming the file instead.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/shards/stream_order.h"

namespace lth::data::shards {

enum class ShardFormat { TFRecord, WebDataset };

struct ShardSample {
  int32_t file = 0;
  uint64_t offset = 0;  // TFRecord: record data; tar: the image member's data
  uint64_t length = 0;
  uint64_t label_offset = 0;  // tar: the .cls member (TFRecord: unused)
  uint64_t label_length = 0;
};

struct ShardIndex {
  ShardFormat format = ShardFormat::TFRecord;
  std::vector<std::filesystem::path> files;
  std::vector<ShardSample> samples;
  std::vector<int64_t> records_per_file;  // samples indexed per file
  int64_t damaged_files = 0;              // files whose framing broke (kept up to the break)
};

struct ShardReadOptions {
  int size = 224;
  bool train = false;       // train transform (random crop + flip) instead of the eval one
  bool strict = false;
  bool stream_order = true; // training visits shards in stream_order.h's order
  int64_t shuffle_buffer = 10000;
  std::string image_feature = "image";  // TFRecord feature names
  std::string label_feature = "label";
  // Stored label -> label in the class index; -1 = not in the index (sample skipped).
  // Empty = identity.
  std::vector<int64_t> label_map;
  int64_t num_classes = 1000;
  std::vector<int64_t> class_subset;  // for ImageNet-R/-A style sets; empty = all classes
};

// Index TFRecord files. Framing problems are warnings, or UserErrors when `strict`.
ShardIndex index_tfrecord_files(const std::vector<std::filesystem::path>& files, bool strict);
// Index WebDataset tars: consecutive members sharing a key (path up to the first '.' of the
// file name) form a sample, which needs an image (.jpg/.jpeg/.png, any case) and a .cls.
ShardIndex index_webdataset_files(const std::vector<std::filesystem::path>& files, bool strict);

class ShardDataset : public Dataset, public ShardOrdered {
 public:
  ShardDataset(std::string name, ShardIndex index, ShardReadOptions options);

  int64_t size() const override { return static_cast<int64_t>(index_.samples.size()); }
  int64_t num_classes() const override { return options_.num_classes; }
  ImageShape shape() const override { return {options_.size, options_.size, 3}; }
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  // Decodes straight into the batch row (Dataset::get_into), as the folder reader does.
  std::optional<int64_t> get_into(int64_t index, Rng& rng, uint8_t* slot) const override;
  std::vector<int64_t> class_subset() const override { return options_.class_subset; }
  std::string describe() const override;
  ShardLayout shard_layout() const override;

  // The stored (encoded) image bytes and the label of sample i, checked but not decoded;
  // throws RecordError / WireError for damaged records (tools, tests, benchmarks).
  std::pair<std::string, int64_t> raw(int64_t index) const;
  int64_t unreadable() const { return unreadable_.load(); }
  const ShardIndex& index() const { return index_; }

 private:
  std::string where(int64_t index) const;
  std::string name_;
  ShardIndex index_;
  ShardReadOptions options_;
  mutable std::atomic<int64_t> unreadable_{0};
};

}  // namespace lth::data::shards
