#pragma once
// The "imagenet" dataset when --data_root holds shards instead of folders:
//   - a TFDS data dir: imagenet2012/<version>/ (train split "train", test split "validation"),
//     or --data_root pointing at that builder or version folder itself;
//   - WebDataset tars (webdataset.h): train/*.tar + val/*.tar, or a shard pattern.
// Otherwise the folder reader (data/imagenet/imagenet_dataset.h) is used, unchanged.
// Also the TFDS builds of the test suite's sets (imagenet_v2, imagenet_r, imagenet_a,
// imagenet_sketch) for eval/suite. Label conventions are in docs/DATA.md.
#include <filesystem>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "data/imagenet/class_index.h"
#include "data/registry.h"

namespace lth::data::shards {

DatasetPtr make_imagenet_any(const DataConfig& config, Split split);
DataTraits imagenet_traits_any(const DataConfig& config);

// The label space of a data root: TFDS imagenet2012's label names, WebDataset's
// classes.txt, else ClassIndex::for_data_root (folders / canonical).
imagenet::ClassIndex class_index_for_root(const std::string& data_root);

struct ShardTestSet {
  std::filesystem::path path;  // the TFDS version folder or the first shard
  DatasetPtr dataset;
};
// A suite set ("imagenet", "imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch") stored
// as TFDS shards under data_root (or, for "imagenet", WebDataset val shards); nullopt if absent.
// imagenet-v2: the TFDS config of `v2_variant` (matched-frequency, threshold0.7, top-images: the
// release names; TFDS's configs matched-frequency, threshold-0.7, topimages) only.
std::optional<ShardTestSet> find_shard_test_set(const std::string& data_root, const std::string& name,
                                                const imagenet::ClassIndex& index, int64_t image_size,
                                                bool strict, const std::string& v2_variant = "matched-frequency");

}  // namespace lth::data::shards
