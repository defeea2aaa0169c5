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

// The official ILSVRC2012 tars in `from` (data/ilsvrc/official.h: ILSVRC2012_img_train.tar,
// ILSVRC2012_img_val.tar, the devkit) streamed straight into shards -- pictures are read from
// the tars in place, nothing is unpacked -- with the same labels and order as `lth
// prepare-imagenet` followed by convert_folders_to_shards. Resumable: `to` may hold an
// earlier, interrupted run's output (marked by its .lth-make-shards file naming `from`);
// finished shards are kept, the rest written. Problems of the source (a truncated tar) are
// logged as warnings and returned in `problems`.
std::vector<std::pair<std::string, int64_t>> convert_official_to_shards(const ConvertOptions& options,
                                                                        std::vector<std::string>* problems = nullptr);

ShardFormat parse_shard_format(const std::string& name);

}  // namespace lth::data::shards
