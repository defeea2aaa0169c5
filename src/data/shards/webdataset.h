#pragma once
// Where WebDataset shards of a split are, for a --data_root that is either
//   - a folder with train/*.tar and val/*.tar (or validation/*.tar), or with
//     *train*.tar and *val*.tar side by side; or
//   - a shard pattern, WebDataset's brace notation and/or a '*' in the file name:
//     "DIR/imagenet-train-{000000..000146}.tar"; the val split is the same pattern with
//     "train" replaced by "val" in the file and folder name and brace groups by '*'
//     (DIR/imagenet-val-*.tar: the naming of the public ImageNet WebDataset shards).
// Labels are the .cls members: class numbers in the class index, which is the canonical
// ImageNet-1k list unless classes.txt (one wnid per line, sorted; `lth make-shards` writes it)
// sits in the data root folder (the pattern's folder's parent for train/*.tar layouts).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lth::data::shards {

// "a-{00..02}-{x,y}.tar" -> a-00-x.tar a-00-y.tar a-01-x.tar ... (numeric ranges keep the
// width of their first bound). UserError for unbalanced or reversed ranges.
std::vector<std::string> expand_braces(const std::string& pattern);

bool looks_like_shard_pattern(const std::string& root);

struct WebDatasetSplit {
  std::vector<std::filesystem::path> files;  // sorted as listed
  std::filesystem::path classes_file;        // empty when there is none
};

// nullopt when `root` holds no tar shards for `split` ("train" or "val"). A pattern whose
// files are missing is a UserError naming the first one.
std::optional<WebDatasetSplit> find_webdataset_split(const std::string& root, const std::string& split);

}  // namespace lth::data::shards
