#pragma once
// ImageNet under --data_root in the layouts people hold (docs/DATA.md, "From the download to
// a run"), besides lth's own (imagenet/train, imagenet/val as WordNet-id class folders):
//   Kaggle (ImageNet Object Localization Challenge): ILSVRC/Data/CLS-LOC/train/<wnid>/*.JPEG,
//       a flat ILSVRC/Data/CLS-LOC/val/ labelled by LOC_val_solution.csv (image id -> the
//       first token of the prediction string, a wnid);
//   a flat validation folder (imagenet/val/*.JPEG, or Kaggle's) with a label file
//       (`val_labels`): one wnid or ILSVRC2012 id (1..1000, mapped through the devkit's
//       meta.mat) per line in file-name order, or `image_id,wnid` CSV (Kaggle's included);
//       without one, ILSVRC2012_val_<k> files are labelled by a devkit in the data root;
//   the test sets' release folders: imagenetv2-<variant>-format-val (variant
//       matched-frequency by default, threshold0.7, top-images), imagenet-r, imagenet-a, and
//       ImageNet-Sketch's sketch/ -- each only where lth's name (imagenet-v2, imagenet-sketch)
//       is absent.
// Refused with a UserError naming the file: a label file whose line count differs from the
// flat folder's image count, an id outside 1..1000 (0 included: 0-based labels are
// ambiguous), ids without a devkit to map them, a wnid outside the class index, images the
// CSV does not label, a flat folder with no label source at all.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"

namespace lth::data::ilsvrc {

struct LayoutOptions {
  std::string val_labels;                        // a label file for a flat val folder ("" = find one)
  std::string v2_variant = "matched-frequency";  // matched-frequency, threshold0.7, top-images
};

struct ImagenetLayout {
  std::string kind;                  // "lth folders", "Kaggle", ...: for logs and `lth data check`
  std::filesystem::path train_dir;   // WordNet-id class folders; empty = none
  std::filesystem::path val_dir;     // class folders, or flat (val_flat); empty = none
  bool val_flat = false;
  std::filesystem::path val_label_file;  // flat: what labels it (CSV, list, devkit); empty = none
};

// Never throws for an unknown layout: the fields stay empty.
ImagenetLayout resolve_imagenet_layout(const std::filesystem::path& root, const LayoutOptions& options);

// The class index of the layout's train folder, else the canonical 1000.
imagenet::ClassIndex class_index_of(const ImagenetLayout& layout);

// The samples of the layout's val folder, sorted as the folder reader sorts (class, file
// name) so that folders, a flat folder and shards give the same list; UserError when a flat
// folder cannot be labelled.
std::vector<imagenet::Sample> list_val_samples(const ImagenetLayout& layout, const imagenet::ClassIndex& index,
                                               const LayoutOptions& options);

// Labels of the flat folder `dir` from `label_file` (formats above): (file, wnid) sorted by
// file name. `devkit_dirs` are searched for the devkit when the file holds ids.
std::vector<std::pair<std::filesystem::path, std::string>> label_flat_folder(
    const std::filesystem::path& dir, const std::filesystem::path& label_file,
    const std::vector<std::filesystem::path>& devkit_dirs);

// The folder of a test set ("imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch")
// under `root`: lth's name, else the release's; nullopt when neither is there.
std::optional<std::filesystem::path> test_set_folder(const std::filesystem::path& root, const std::string& set,
                                                     const LayoutOptions& options);

// The V2 variants by name, and their release folder names.
const std::vector<std::string>& v2_variants();
std::string v2_release_folder(const std::string& variant);

}  // namespace lth::data::ilsvrc
