#pragma once
// The distribution-shift test suite: which of the reference's test sets are present under
// one --data_root, each as a Dataset with the eval transform, and which are absent.
//
//   imagenet         <root>/imagenet/val       WordNet-id folders, all classes
//   imagenet-v2      <root>/imagenet-v2        folders 0..999 (class index)
//   imagenet-r       <root>/imagenet-r         WordNet-id folders of the fixed 200-class list
//   imagenet-a       <root>/imagenet-a         (data/imagenet/subset_classes.h): logits
//                                              restricted to those 200 columns
//   imagenet-sketch  <root>/imagenet-sketch    WordNet-id folders, all classes
// plus the reference's pre-resized arrays, <root>/<Name>_x<S>/test_images.npy and
// test_labels.npy, each reported under <Name>_x<S>; arrays whose name starts with
// ImageNetR / ImageNetA (any case, '-' and '_' ignored) hold labels that are positions
// 0..199 in that fixed list, as the reference's arrays do, and are scored 200-way.
//
// Also ImageNet as downloaded (data/ilsvrc/layouts.h): Kaggle's val folder and CSV, a flat val
// folder with --val_labels, imagenetv2-<variant>-format-val and sketch/ where lth's names are absent.
// Labels follow ClassIndex::for_data_root(root): the sorted class folders of
// imagenet/train when present (checked against the canonical 1000), else the canonical list.
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lth::eval {

struct TestSet {
  std::string name;            // "imagenet", "imagenet-v2", ..., or "<Name>_x224"
  std::filesystem::path path;  // folder read
  data::DatasetPtr dataset;
  std::vector<int64_t> class_subset;  // empty = all classes; else sorted labels to keep
};

struct AbsentSet {
  std::string name;
  std::filesystem::path path;  // where it was looked for
};

struct TestSuite {
  std::vector<TestSet> present;  // in the order of standard_test_sets(), then arrays by name
  std::vector<AbsentSet> absent;
  int64_t num_classes = 0;  // of the label space (the class index)
};

struct SuiteOptions {
  int64_t image_size = 224;
  bool strict = false;            // unreadable images are errors, not logged skips
  bool include_arrays = true;     // also look for <Name>_x<S>/test_images.npy
  std::vector<std::string> only;  // restrict to these set names (empty = all)
  // ImageNet as downloaded (data/ilsvrc/layouts.h): a flat val folder's label file, the V2
  // release variant; Kaggle's tree and the release folder names are found by themselves.
  std::string val_labels;
  std::string v2_variant = "matched-frequency";
};

// The five folder test sets, in the reference's reporting order.
const std::vector<std::string>& standard_test_sets();

// Throws UserError if data_root is not a folder, or if `only` names a set that is absent.
TestSuite discover_test_suite(const std::filesystem::path& data_root, const SuiteOptions& options);

}  // namespace lth::eval
