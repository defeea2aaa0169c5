#include "data/imagenet/imagenet_dataset.h"

#include "common/error.h"
#include "data/imagenet/folder_dataset.h"

namespace lth::data::imagenet {

namespace {

std::filesystem::path root_of(const DataConfig& config) {
  require(!config.root.empty(),
          "dataset 'imagenet' needs --data_root (the folder holding imagenet/train)");
  return config.root;
}

int64_t size_of(const DataConfig& config) {
  return config.image_size == 0 ? kDefaultImageSize : config.image_size;
}

}  // namespace

DatasetPtr make_imagenet_dataset(const DataConfig& config, Split split) {
  const auto root = root_of(config);
  const auto index = ClassIndex::for_data_root(root);
  FolderOptions options;
  options.size = static_cast<int>(size_of(config));
  options.train = split == Split::Train && !config.eval_transform;
  options.strict = config.strict;
  const auto dir = root / "imagenet" / (split == Split::Train ? "train" : "val");
  return open_wnid_dataset(split == Split::Train ? "imagenet/train" : "imagenet", dir, index,
                           options);
}

DataTraits imagenet_traits(const DataConfig& config) {
  const auto index = ClassIndex::for_data_root(root_of(config));
  // The reference's pixel statistics (stored with its model, see RECIPE.md "Model").
  return DataTraits{index.size(),
                    3,
                    size_of(config),
                    {0.48145466, 0.4578275, 0.40821073},
                    {0.26862954, 0.26130258, 0.27577711}};
}

}  // namespace lth::data::imagenet
