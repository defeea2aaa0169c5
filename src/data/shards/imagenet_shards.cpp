#include "data/shards/imagenet_shards.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "common/error.h"
#include "data/ilsvrc/layouts.h"
#include "data/ilsvrc/official.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/imagenet_dataset.h"
#include "data/imagenet/subset_classes.h"
#include "data/shards/shard_dataset.h"
#include "data/shards/tfds.h"
#include "data/shards/webdataset.h"

namespace lth::data::shards {
namespace fs = std::filesystem;
namespace img = data::imagenet;
namespace {

int size_of(int64_t image_size) {
  return static_cast<int>(image_size == 0 ? img::kDefaultImageSize : image_size);
}

constexpr const char* kTfdsImagenet = "imagenet2012";

// A TFDS folder of imagenet2012 that lacks its dataset_info.json is named as such, instead of
// being read as a folder layout ("imagenet/train is not a folder"): a folder holding
// .tfrecord shards, the builder folder itself, or a data dir whose only ImageNet is the builder.
void refuse_tfds_without_metadata(const fs::path& root) {
  std::error_code ec;
  if (fs::is_directory(root / "imagenet", ec)) return;  // the folder layout
  bool shards = false;
  for (const auto& entry : fs::directory_iterator(root, ec))
    shards = shards || entry.path().filename().string().find(".tfrecord-") != std::string::npos;
  const bool builder = root.filename() == kTfdsImagenet;
  const bool data_dir = fs::is_directory(root / kTfdsImagenet, ec);
  if (!shards && !builder && !data_dir) return;
  const fs::path where = data_dir ? root / kTfdsImagenet : root;
  throw UserError(where.string() + ": TFDS " + kTfdsImagenet + " shards without dataset_info.json" +
                  (shards ? "" : " in any version folder") +
                  " (it lists the splits and their shard files; TFDS writes it next to them)");
}

std::optional<fs::path> imagenet_tfds(const std::string& root) {
  if (root.empty() || looks_like_shard_pattern(root)) return std::nullopt;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return std::nullopt;
  if (auto found = find_tfds_version(root, kTfdsImagenet)) return found;
  refuse_tfds_without_metadata(root);
  return std::nullopt;
}

// Where the test suite's TFDS builders lie: the data dir, also when --data_root is
// imagenet2012's builder folder or one of its (config/)version folders (the siblings
// imagenet_v2, imagenet_r, ... sit beside the builder, not inside it).
std::vector<fs::path> tfds_data_dirs(const fs::path& root) {
  std::vector<fs::path> dirs{root};
  fs::path p = root;
  for (int up = 0; up < 3 && p.has_relative_path(); ++up, p = p.parent_path()) {
    if (p.filename() != kTfdsImagenet) continue;
    dirs.push_back(p.has_parent_path() ? p.parent_path() : fs::path("."));
    break;
  }
  return dirs;
}

bool sorted_unique(const std::vector<std::string>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<>()) == v.end();
}

img::ClassIndex index_from_names(const std::vector<std::string>& names, int64_t num_classes) {
  if (!names.empty() && sorted_unique(names)) {
    try {
      return img::ClassIndex(names);
    } catch (const UserError&) {
    }
  }
  const auto canonical = img::ClassIndex::canonical();
  if (num_classes > 0 && num_classes < canonical.size()) {
    return img::ClassIndex(std::vector<std::string>(canonical.wnids().begin(),
                                                    canonical.wnids().begin() + num_classes));
  }
  return canonical;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  require(static_cast<bool>(in), path.string() + ": cannot open");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Stored label -> index label. Names (wnids) when the build has them; otherwise the stored
// label is an ImageNet-1k label, mapped through its canonical wnid.
std::vector<int64_t> label_map_for(const TfdsBuilder& b, const img::ClassIndex& index, bool needs_names) {
  std::vector<int64_t> map;
  int64_t found = 0;
  for (const auto& name : b.label_names) {
    const auto l = index.find(name);
    map.push_back(l ? *l : -1);
    found += l ? 1 : 0;
  }
  if (found > 0) return map;
  require(!needs_names, (b.dir / (b.label_feature + ".labels.txt")).string() +
                            ": missing or without WordNet ids; " + b.name +
                            " stores labels 0..199 that only its label names map to ImageNet classes");
  const auto canonical = img::ClassIndex::canonical();
  map.clear();
  for (const auto& wnid : canonical.wnids()) {
    const auto l = index.find(wnid);
    map.push_back(l ? *l : -1);
  }
  return map;
}

ShardReadOptions read_options(const DataConfig* config, int64_t image_size, bool train, bool strict) {
  ShardReadOptions o;
  o.size = size_of(image_size);
  o.train = train;
  o.strict = strict;
  if (config) {
    require(config->shard_order == "stream" || config->shard_order == "global",
            "--shard_order must be 'stream' or 'global', not '" + config->shard_order + "'");
    require(config->shuffle_buffer >= 0, "--shuffle_buffer must be >= 0");
    o.stream_order = config->shard_order == "stream";
    o.shuffle_buffer = config->shuffle_buffer;
  }
  return o;
}

void check_counts(const TfdsSplit& split, const ShardIndex& index) {
  for (size_t f = 0; f < split.files.size() && f < split.shard_lengths.size(); ++f) {
    if (index.records_per_file[f] != split.shard_lengths[f]) {
      spdlog::warn("{}: {} records, dataset_info.json says {}", split.files[f].string(),
                   index.records_per_file[f], split.shard_lengths[f]);
    }
  }
}

DatasetPtr open_tfds_split(const TfdsBuilder& b, const std::string& split_name, const std::string& label,
                           const img::ClassIndex& index, ShardReadOptions options, bool needs_names) {
  const auto* split = b.split(split_name);
  require(split != nullptr, (b.dir / "dataset_info.json").string() + ": no split '" + split_name + "'");
  auto shards = index_tfrecord_files(split->files, options.strict);
  check_counts(*split, shards);
  if (split->counts_from_files) {
    int64_t records = 0;
    for (const auto n : shards.records_per_file) records += n;
    spdlog::warn("{}: split '{}' states no shard counts (neither shardLengths nor numShards); read {} "
                 "files named by its file template, {} records counted",
                 (b.dir / "dataset_info.json").string(), split_name, split->files.size(), records);
  }
  options.image_feature = b.image_feature;
  options.label_feature = b.label_feature;
  options.label_map = label_map_for(b, index, needs_names);
  options.num_classes = index.size();
  if (needs_names) {
    // ImageNet-R / -A: scored 200-way over the reference's fixed lists (subset_classes.h),
    // whatever the build's names; a name outside the list would be scored wrongly.
    const auto list = img::subset_list_for(label);
    if (list) {
      options.class_subset = img::subset_labels(*list, index);
      const std::set<int64_t> listed(options.class_subset.begin(), options.class_subset.end());
      for (const int64_t l : options.label_map) {
        if (l >= 0 && listed.count(l) == 0)
          throw UserError((b.dir / "dataset_info.json").string() + ": class " + index.wnid(l) +
                          " is not one of the 200 " + img::subset_list_name(*list) + " classes (docs/DATA.md)");
      }
    } else {
      std::set<int64_t> present;
      for (const int64_t l : options.label_map) {
        if (l >= 0) present.insert(l);
      }
      options.class_subset.assign(present.begin(), present.end());
    }
  }
  return std::make_shared<ShardDataset>(label, std::move(shards), std::move(options));
}

img::ClassIndex webdataset_index(const WebDatasetSplit& s) {
  if (s.classes_file.empty()) return img::ClassIndex::canonical();
  const auto names = read_lines(s.classes_file);
  require(sorted_unique(names), s.classes_file.string() + ": class ids must be sorted and unique");
  return img::ClassIndex(names);
}

}  // namespace

img::ClassIndex class_index_for_root(const std::string& root) {
  if (auto dir = imagenet_tfds(root)) {
    const auto b = read_tfds_builder(*dir);
    return index_from_names(b.label_names, b.num_classes);
  }
  if (auto wds = find_webdataset_split(root, "train")) return webdataset_index(*wds);
  if (looks_like_shard_pattern(root)) {
    throw UserError("--data_root " + root + ": no shard files match");
  }
  // Folders: lth's layout, Kaggle's tree, ... (data/ilsvrc/layouts.h).
  const auto layout = ilsvrc::resolve_imagenet_layout(root, {});
  if (!layout.train_dir.empty()) return ilsvrc::class_index_of(layout);
  return img::ClassIndex::for_data_root(root);
}

DatasetPtr make_imagenet_any(const DataConfig& config, Split split) {
  const bool train = split == Split::Train;
  // Random crop + flip, unless the train split is read as a hold-out set's eval view.
  const bool augment = train && !config.eval_transform;
  if (auto dir = imagenet_tfds(config.root)) {
    const auto b = read_tfds_builder(*dir);
    const auto index = index_from_names(b.label_names, b.num_classes);
    const auto options = read_options(&config, config.image_size, augment, config.strict);
    return open_tfds_split(b, train ? "train" : "validation", train ? "imagenet/train" : "imagenet",
                           index, options, false);
  }
  if (!config.root.empty()) {
    if (auto wds = find_webdataset_split(config.root, train ? "train" : "val")) {
      // One label space for the root: the train split's classes.txt labels val too (it may
      // lie in train/ only, where docs/DATA.md allows it).
      const auto train_split = train ? wds : find_webdataset_split(config.root, "train");
      const auto index = webdataset_index(train_split ? *train_split : *wds);
      auto options = read_options(&config, config.image_size, augment, config.strict);
      options.num_classes = index.size();
      auto shards = index_webdataset_files(wds->files, config.strict);
      return std::make_shared<ShardDataset>(train ? "imagenet/train" : "imagenet", std::move(shards), options);
    }
    if (looks_like_shard_pattern(config.root)) {
      throw UserError("--data_root " + config.root + ": no " + (train ? "train" : "val") +
                      " shard files match" +
                      (train ? "" : " (the val split is the pattern with 'train' replaced by 'val')"));
    }
  }
  // ImageNet as downloaded: Kaggle's tree, a flat val folder with labels (data/ilsvrc).
  const auto layout = ilsvrc::resolve_imagenet_layout(config.root, {config.val_labels, config.v2_variant});
  const bool own_layout = layout.kind == "lth folders";
  if (layout.kind.empty()) {
    const auto tars = ilsvrc::find_official(config.root);
    require(!tars.train_tar && !tars.val_tar,
            "--data_root " + config.root + " holds the official ILSVRC2012 tars; training reads them after `lth "
            "prepare-imagenet --from " + config.root + " --to DATA` or `lth make-shards --from " + config.root +
            " --to SHARDS` (docs/DATA.md, \"From the download to a run\")");
  }
  if (layout.kind.empty() || (own_layout && (train || !layout.val_flat))) return img::make_imagenet_dataset(config, split);
  const auto index = ilsvrc::class_index_of(layout);
  img::FolderOptions options;
  options.size = size_of(config.image_size);
  options.train = augment;
  options.strict = config.strict;
  if (train) {
    require(!layout.train_dir.empty(), "--data_root " + config.root + " (" + layout.kind + ") has no train folder");
    return img::open_wnid_dataset("imagenet/train", layout.train_dir, index, options);
  }
  require(!layout.val_dir.empty(), "--data_root " + config.root + " (" + layout.kind + ") has no val folder");
  auto samples = ilsvrc::list_val_samples(layout, index, {config.val_labels, config.v2_variant});
  return std::make_shared<img::ImageFolderDataset>("imagenet", std::move(samples), index.size(),
                                                   std::vector<int64_t>{}, options);
}

DataTraits imagenet_traits_any(const DataConfig& config) {
  if (config.root.empty()) return img::imagenet_traits(config);  // its error names the flag
  DataConfig folder = config;  // pixel statistics and size as for folders
  if (looks_like_shard_pattern(config.root)) folder.root = "/";
  auto traits = img::imagenet_traits(folder);
  traits.num_classes = class_index_for_root(config.root).size();
  return traits;
}

std::optional<ShardTestSet> find_shard_test_set(const std::string& root, const std::string& name,
                                                const img::ClassIndex& index, int64_t image_size,
                                                bool strict, const std::string& v2_variant) {
  const auto options = read_options(nullptr, image_size, /*train=*/false, strict);
  // The release's variant name -> TFDS's config name (ilsvrc::v2_release_folder checks the name).
  (void)ilsvrc::v2_release_folder(v2_variant);
  const std::string v2_config = v2_variant == "threshold0.7" ? "threshold-0.7"
                                : v2_variant == "top-images" ? "topimages"
                                                             : "matched-frequency";
  struct Build {
    const char* set;
    const char* builder;
    std::vector<std::string> configs;
    const char* split;
    bool needs_names;
  };
  static const std::vector<Build> builds = {
      {"imagenet", "imagenet2012", {}, "validation", false},
      {"imagenet-v2", "imagenet_v2", {"@v2"}, "test", false},
      {"imagenet-r", "imagenet_r", {}, "test", true},
      {"imagenet-a", "imagenet_a", {}, "test", true},
      {"imagenet-sketch", "imagenet_sketch", {}, "test", false},
  };
  std::error_code ec;
  const bool is_dir = !root.empty() && !looks_like_shard_pattern(root) && fs::is_directory(root, ec);
  for (const auto& b : builds) {
    if (name != b.set || !is_dir) continue;
    auto configs = b.configs;
    for (auto& c : configs)
      if (c == "@v2") c = v2_config;
    for (const auto& data_dir : tfds_data_dirs(root)) {
      if (auto dir = find_tfds_version(data_dir, b.builder, configs)) {
        const auto builder = read_tfds_builder(*dir);
        if (!builder.split(b.split)) continue;
        return ShardTestSet{*dir, open_tfds_split(builder, b.split, name, index, options, b.needs_names)};
      }
    }
  }
  if (name == "imagenet") {
    if (auto wds = find_webdataset_split(root, "val")) {
      auto o = options;
      o.num_classes = index.size();
      return ShardTestSet{wds->files.front(),
                          std::make_shared<ShardDataset>(name, index_webdataset_files(wds->files, strict), o)};
    }
  }
  return std::nullopt;
}

}  // namespace lth::data::shards
