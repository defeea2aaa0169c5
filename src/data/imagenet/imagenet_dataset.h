#pragma once
// The "imagenet" entry of the dataset registry (data/registry.h): the train split is
// <root>/imagenet/train with the train transform, the test split <root>/imagenet/val with
// the eval transform; labels follow ClassIndex::for_data_root(root). Default size 224.
#include "data/dataset.h"
#include "data/registry.h"

namespace lth::data::imagenet {

inline constexpr int64_t kDefaultImageSize = 224;

DatasetPtr make_imagenet_dataset(const DataConfig& config, Split split);
// Classes from the root's index, 3 channels, the recipe's pixel statistics.
DataTraits imagenet_traits(const DataConfig& config);

}  // namespace lth::data::imagenet
