#include "data/registry.h"

#include <functional>

#include "common/registry.h"
#include "data/idx.h"
#include "data/imagenet/imagenet_dataset.h"
#include "data/shards/imagenet_shards.h"
#include "data/synthetic.h"

namespace lth::data {
namespace {

struct DatasetEntry {
  std::function<DatasetPtr(const DataConfig&, Split)> make;
  std::function<DataTraits(const DataConfig&)> traits;
};

std::string root_or(const DataConfig& config, const std::string& fallback) {
  return config.root.empty() ? fallback : config.root;
}

DatasetEntry idx_entry(std::string default_root, double mean, double std) {
  return DatasetEntry{
      [default_root](const DataConfig& c, Split split) -> DatasetPtr {
        require(c.image_size == 0 || c.image_size == 28,
                "IDX datasets are 28x28; --image_size " + std::to_string(c.image_size) +
                    " is not supported");
        return std::make_shared<IdxDataset>(root_or(c, default_root), split);
      },
      [mean, std](const DataConfig&) { return DataTraits{10, 1, 28, {mean}, {std}}; }};
}

SyntheticConfig synthetic_config(const DataConfig& c, Split split) {
  SyntheticConfig s;
  s.size = split == Split::Train ? c.synthetic_train_size : c.synthetic_test_size;
  s.num_classes = c.synthetic_classes;
  s.channels = c.synthetic_channels;
  s.image_size = c.image_size == 0 ? 28 : c.image_size;
  s.seed = c.seed;
  return s;
}

const Registry<DatasetEntry>& registry() {
  static const Registry<DatasetEntry> r = [] {
    Registry<DatasetEntry> reg("dataset");
    reg.add("fashion-mnist", idx_entry("/usr/share/datasets/fashion-mnist", 0.2860, 0.3530),
            "Fashion-MNIST IDX files (default root: Debian's dataset-fashion-mnist)");
    reg.add("mnist", idx_entry("/usr/share/datasets/mnist", 0.1307, 0.3081),
            "MNIST IDX files (--data_root)");
    reg.add("synthetic",
            DatasetEntry{[](const DataConfig& c, Split split) -> DatasetPtr {
                           return std::make_shared<SyntheticDataset>(synthetic_config(c, split),
                                                                     split);
                         },
                         [](const DataConfig& c) {
                           const auto s = synthetic_config(c, Split::Train);
                           return DataTraits{s.num_classes, s.channels, s.image_size,
                                             std::vector<double>(s.channels, 0.5),
                                             std::vector<double>(s.channels, 0.3)};
                         }},
            "generated class patterns, for tests and demos");
    // Folders, or TFDS / WebDataset shards when --data_root holds them (data/shards).
    const DatasetEntry imagenet{shards::make_imagenet_any, shards::imagenet_traits_any};
    reg.add("imagenet", imagenet,
            "ImageNet-1k under --data_root: folders (imagenet/train, imagenet/val), a TFDS data dir "
            "(imagenet2012/<version>) or WebDataset shards (train/*.tar, val/*.tar or a pattern)");
    reg.add("imagenet2012", imagenet, "the reference's name for imagenet");
    return reg;
  }();
  return r;
}

}  // namespace

DatasetPtr make_dataset(const DataConfig& config, Split split) {
  return registry().get(config.name).make(config, split);
}

DataTraits dataset_traits(const DataConfig& config) {
  return registry().get(config.name).traits(config);
}

std::vector<std::string> dataset_names() { return registry().names(); }

}  // namespace lth::data
