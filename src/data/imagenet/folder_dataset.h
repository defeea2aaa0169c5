#pragma once
// Image-folder datasets: one sub-folder per class, images inside, decoded and transformed
// on demand (see pipeline.h). The ImageNet layouts under one data root:
//   imagenet/train, imagenet/val, imagenet-r, imagenet-a, imagenet-sketch:
//       folders named by WordNet id; label = the id's position in the ClassIndex;
//   imagenet-v2: folders named 0 ... 999; label = the number.
// ImageNet-R/-A hold 200 of the classes: their class_subset() lists the reference's fixed
// 200 classes, so the evaluator can restrict the logits to them; labels stay in the full
// label space.
//
// Files with extension .jpeg/.jpg/.png (any case) are samples, whatever their content; an
// unreadable one is logged (one warning line: file and reason), counted in unreadable(),
// and get() returns nullopt, or, when opened strict, get() throws UserError naming it.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/pipeline.h"
#include "data/imagenet/subset_classes.h"

namespace lth::data::imagenet {

struct Sample {
  std::filesystem::path path;
  int64_t label = 0;
};

struct FolderOptions {
  int size = 224;
  bool train = false;  // train transform (random crop + flip) instead of the eval one
  bool strict = false;
  bool dct_scaling = false;  // see pipeline.h: off, as the reference decodes at full size
  DecodeLimits limits = default_decode_limits();  // per-file size and pixel caps
};

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(std::string name, std::vector<Sample> samples, int64_t num_classes,
                     std::vector<int64_t> class_subset, FolderOptions options);

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  int64_t num_classes() const override { return num_classes_; }
  ImageShape shape() const override { return {options_.size, options_.size, 3}; }
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  // Decodes and transforms straight into `slot` (the loader's batch row).
  std::optional<int64_t> get_into(int64_t index, Rng& rng, uint8_t* slot) const override;
  std::vector<int64_t> class_subset() const override { return class_subset_; }
  std::optional<int64_t> label(int64_t index) const override {
    return samples_.at(static_cast<size_t>(index)).label;
  }
  std::string describe() const override;

  const std::vector<Sample>& samples() const { return samples_; }
  const FolderOptions& options() const { return options_; }
  // Unreadable samples met so far by get() (each call counts).
  int64_t unreadable() const { return unreadable_.load(); }

 private:
  std::string name_;
  std::vector<Sample> samples_;
  int64_t num_classes_;
  std::vector<int64_t> class_subset_;
  FolderOptions options_;
  TransformSpec spec_;
  mutable std::atomic<int64_t> unreadable_{0};
};

// Samples of a folder of WordNet-id class folders, sorted by (class, file name). Folders
// whose id is not in `index` are skipped with a warning. `present` (optional) receives the
// sorted labels that have at least one file.
std::vector<Sample> list_wnid_folders(const std::filesystem::path& dir, const ClassIndex& index,
                                      std::vector<int64_t>* present = nullptr);
// Samples of a folder of numerically named class folders (ImageNet-V2); numbers outside
// [0, num_classes) are skipped with a warning.
std::vector<Sample> list_numeric_folders(const std::filesystem::path& dir, int64_t num_classes,
                                         std::vector<int64_t>* present = nullptr);

// imagenet/train, imagenet/val, imagenet-sketch: all classes of `index`.
std::shared_ptr<ImageFolderDataset> open_wnid_dataset(const std::string& name,
                                                      const std::filesystem::path& dir,
                                                      const ClassIndex& index,
                                                      const FolderOptions& options);
// imagenet-r, imagenet-a: class_subset() = the fixed 200-class list (subset_classes.h) as
// labels of `index`, whatever folders exist. A folder outside the list is a UserError naming
// it; listed classes without a folder are logged and still take part in the projection.
std::shared_ptr<ImageFolderDataset> open_wnid_subset_dataset(const std::string& name,
                                                             const std::filesystem::path& dir,
                                                             const ClassIndex& index,
                                                             SubsetList list,
                                                             const FolderOptions& options);
// imagenet-v2.
std::shared_ptr<ImageFolderDataset> open_numeric_dataset(const std::string& name,
                                                         const std::filesystem::path& dir,
                                                         int64_t num_classes,
                                                         const FolderOptions& options);

}  // namespace lth::data::imagenet
