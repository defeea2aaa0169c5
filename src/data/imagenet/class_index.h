#pragma once
// ImageNet class index: label i is the i-th WordNet id in sorted order (the standard
// ImageNet-1k order: n01440764 = 0 ... n15075141 = 999).
//
// The canonical list of the 1000 ImageNet-1k ids is compiled into the library (from
// imagenet_wnids.txt beside this file). A data root's index is derived from the class
// folders of imagenet/train when present, as the reference's folder reader does, and
// checked against that list: any difference is logged. A train folder with only the first
// K canonical classes (what `lth make-imagenet --classes K` writes) thus gives labels
// 0..K-1 that coincide with the canonical ones.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lth::data::imagenet {

// The 1000 ImageNet-1k WordNet ids, sorted.
const std::vector<std::string>& canonical_wnids();

// True for "n" followed by 8 digits.
bool is_wnid(const std::string& name);

class ClassIndex {
 public:
  explicit ClassIndex(std::vector<std::string> sorted_wnids);
  static ClassIndex canonical();
  // Sorted wnid-named subfolders of `train_dir`; logs how they differ from the canonical list.
  static ClassIndex from_train_folder(const std::filesystem::path& train_dir);
  // <root>/imagenet/train's classes when that folder exists, else the canonical list.
  static ClassIndex for_data_root(const std::filesystem::path& data_root);

  int64_t size() const { return static_cast<int64_t>(wnids_.size()); }
  const std::vector<std::string>& wnids() const { return wnids_; }
  const std::string& wnid(int64_t label) const { return wnids_.at(static_cast<size_t>(label)); }
  std::optional<int64_t> find(const std::string& wnid) const;
  bool is_canonical() const;

 private:
  std::vector<std::string> wnids_;
  std::map<std::string, int64_t> labels_;
};

}  // namespace lth::data::imagenet
