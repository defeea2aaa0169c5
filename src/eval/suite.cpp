#include "eval/suite.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "common/error.h"
#include "data/ilsvrc/layouts.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/npy.h"
#include "data/imagenet/subset_classes.h"
#include "data/shards/imagenet_shards.h"
#include "data/shards/webdataset.h"

namespace lth::eval {

namespace fs = std::filesystem;
namespace img = data::imagenet;

namespace {

enum class Layout { Wnid, WnidSubset, Numeric };

struct FolderSet {
  const char* name;
  const char* relative;
  Layout layout;
};

const std::vector<FolderSet>& folder_sets() {
  static const std::vector<FolderSet> sets = {
      {"imagenet", "imagenet/val", Layout::Wnid},
      {"imagenet-v2", "imagenet-v2", Layout::Numeric},
      {"imagenet-r", "imagenet-r", Layout::WnidSubset},
      {"imagenet-a", "imagenet-a", Layout::WnidSubset},
      {"imagenet-sketch", "imagenet-sketch", Layout::Wnid},
  };
  return sets;
}

bool wanted(const SuiteOptions& o, const std::string& name) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

std::shared_ptr<img::ImageFolderDataset> open_folder(const FolderSet& set, const fs::path& dir,
                                                     const img::ClassIndex& index,
                                                     const img::FolderOptions& options) {
  switch (set.layout) {
    case Layout::Wnid:
      return img::open_wnid_dataset(set.name, dir, index, options);
    case Layout::WnidSubset:
      return img::open_wnid_subset_dataset(set.name, dir, index, *img::subset_list_for(set.name),
                                           options);
    case Layout::Numeric:
      break;
  }
  return img::open_numeric_dataset(set.name, dir, index.size(), options);
}

// The columns an ImageNet-R/-A array's position labels stand for: the whole fixed list,
// which the class index must hold (arrays carry positions, so no class can be left out).
std::vector<int64_t> array_positions(img::SubsetList list, const img::ClassIndex& index,
                                     const fs::path& dir) {
  std::vector<std::string> missing;
  auto columns = img::subset_labels(list, index, &missing);
  require(missing.empty(), (dir / "test_labels.npy").string() + ": scoring it needs all 200 " +
                               img::subset_list_name(list) + " classes, but the class index (" +
                               std::to_string(index.size()) + " classes) lacks " +
                               std::to_string(missing.size()) + " of them, e.g. " +
                               (missing.empty() ? std::string() : missing.front()));
  return columns;
}

std::vector<fs::path> array_folders(const fs::path& root) {
  static const std::regex pattern(".+_x[0-9]+");
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory() && std::regex_match(entry.path().filename().string(), pattern) &&
        fs::exists(entry.path() / "test_images.npy") &&
        fs::exists(entry.path() / "test_labels.npy")) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

const std::vector<std::string>& standard_test_sets() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& s : folder_sets()) n.emplace_back(s.name);
    return n;
  }();
  return names;
}

TestSuite discover_test_suite(const fs::path& data_root, const SuiteOptions& options) {
  std::error_code ec;
  require(fs::is_directory(data_root, ec) || data::shards::looks_like_shard_pattern(data_root.string()),
          "--data_root " + data_root.string() + " is not a folder");
  // Folders, or TFDS / WebDataset shards (their label names / classes.txt): data/shards.
  const auto index = data::shards::class_index_for_root(data_root.string());
  img::FolderOptions folder_options;
  folder_options.size = static_cast<int>(options.image_size);
  folder_options.train = false;
  folder_options.strict = options.strict;

  TestSuite suite;
  suite.num_classes = index.size();
  for (const auto& set : folder_sets()) {
    if (!wanted(options, set.name)) continue;
    fs::path dir = data_root / set.relative;
    std::shared_ptr<img::ImageFolderDataset> ds;
    const data::ilsvrc::LayoutOptions layout_options{options.val_labels, options.v2_variant};
    if (std::string(set.name) == "imagenet") {
      const auto layout = data::ilsvrc::resolve_imagenet_layout(data_root, layout_options);
      if (!layout.val_dir.empty() && (layout.val_flat || layout.kind != "lth folders")) {
        dir = layout.val_dir;  // Kaggle's, or a flat folder with labels
        ds = std::make_shared<img::ImageFolderDataset>(
            set.name, data::ilsvrc::list_val_samples(layout, index, layout_options), index.size(),
            std::vector<int64_t>{}, folder_options);
      }
    } else if (auto release = data::ilsvrc::test_set_folder(data_root, set.name, layout_options)) {
      dir = *release;  // lth's name, else the release's (imagenetv2-...-format-val, sketch)
    }
    if (!ds && fs::is_directory(dir, ec)) ds = open_folder(set, dir, index, folder_options);
    if (!ds) {  // no folder: the set's TFDS build (or WebDataset val shards) instead
      if (auto s = data::shards::find_shard_test_set(data_root.string(), set.name, index,
                                                     options.image_size, options.strict, options.v2_variant)) {
        suite.present.push_back(TestSet{set.name, s->path, s->dataset, s->dataset->class_subset()});
        continue;
      }
    }
    if (!ds || ds->size() == 0) {
      suite.absent.push_back(AbsentSet{set.name, dir});
      continue;
    }
    suite.present.push_back(TestSet{set.name, dir, ds, ds->class_subset()});
  }
  if (options.include_arrays) {
    for (const auto& dir : array_folders(data_root)) {
      const std::string name = dir.filename().string();
      if (!wanted(options, name)) continue;
      const auto list = img::subset_list_for(name);
      std::vector<int64_t> positions;
      if (list) positions = array_positions(*list, index, dir);
      auto ds = img::NpyDataset::open(name, dir, index.size(), options.image_size,
                                      list ? &positions : nullptr);
      suite.present.push_back(TestSet{name, dir, ds, ds->class_subset()});
    }
  }
  for (const auto& name : options.only) {
    const bool found = std::any_of(suite.present.begin(), suite.present.end(),
                                   [&](const TestSet& t) { return t.name == name; });
    require(found, "test set '" + name + "' is not present under " + data_root.string());
  }
  return suite;
}

}  // namespace lth::eval
