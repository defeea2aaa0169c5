#pragma once
// `lth make-shards`: a data root in the folder layout (docs/DATA.md) to shards.
//   tfrecord:   a TFDS data dir: imagenet2012/5.1.0 (train, validation),
//               imagenet_v2/matched-frequency/3.0.0, imagenet_r/0.2.0, imagenet_a/0.1.0,
//               imagenet_sketch/0.2.0 (split "test"), each with dataset_info.json,
//               features.json and label.labels.txt, labels stored as TFDS stores them;
//   webdataset: train/train-NNNNNN.tar, val/val-NNNNNN.tar and classes.txt.
// Sets absent from the source are left out. Samples keep the folder reader's order.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "data/shards/shard_dataset.h"

namespace lth::data::shards {

struct ConvertOptions {
  std::filesystem::path from;
  std::filesystem::path to;
  ShardFormat format = ShardFormat::TFRecord;
  int64_t shard_size = 1024;  // samples per shard
};

// (set name, samples written) per set. UserError if `to` is a non-empty folder, `from`
// holds none of the sets, or a file cannot be read.
std::vector<std::pair<std::string, int64_t>> convert_folders_to_shards(const ConvertOptions& options);

ShardFormat parse_shard_format(const std::string& name);

}  // namespace lth::data::shards
