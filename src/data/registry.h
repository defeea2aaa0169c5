#pragma once
// Datasets chosen by name: "fashion-mnist", "mnist" (IDX files), "synthetic" (generated),
// and the ImageNet family ("imagenet", registered by data/imagenet). Each name also knows
// the model-facing traits (classes, channels, size, pixel statistics) so a config need
// not repeat them.
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lth::data {

struct DataConfig {
  std::string name = "fashion-mnist";
  std::string root;          // empty = the dataset's default location
  int64_t image_size = 0;    // 0 = the dataset's native size
  bool strict = false;       // unreadable samples are errors instead of logged skips
  // Shards (TFDS TFRecord, WebDataset tar): "stream" = each rank reads its own files through
  // a shuffle buffer (data/shards/stream_order.h); "global" = the loader's permutation of all
  // samples, as for folders (same batches as the folder layout for the same images).
  std::string shard_order = "stream";
  int64_t shuffle_buffer = 10000;  // records, for shard_order = "stream"
  // The train split read with the evaluation transform (centre crop, no flip): the view a
  // hold-out set drawn from the training images is evaluated through.
  bool eval_transform = false;
  // ImageNet as downloaded (data/ilsvrc/layouts.h): a flat validation folder's label file, and
  // the ImageNet-V2 variant read from its release folder.
  std::string val_labels;
  std::string v2_variant = "matched-frequency";
  uint64_t seed = 0;         // for generated datasets
  int64_t synthetic_train_size = 512;
  int64_t synthetic_test_size = 256;
  int64_t synthetic_classes = 10;
  int64_t synthetic_channels = 1;
};

struct DataTraits {
  int64_t num_classes = 10;
  int64_t channels = 1;
  int64_t image_size = 28;
  std::vector<double> pixel_mean;
  std::vector<double> pixel_std;
};

DatasetPtr make_dataset(const DataConfig& config, Split split);
DataTraits dataset_traits(const DataConfig& config);
std::vector<std::string> dataset_names();

}  // namespace lth::data
