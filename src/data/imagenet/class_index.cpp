#include "data/imagenet/class_index.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "common/error.h"

namespace lth::data::imagenet {

extern const char* const kCanonicalWnidsText;  // wnids_data.cpp, generated

namespace fs = std::filesystem;

const std::vector<std::string>& canonical_wnids() {
  static const std::vector<std::string> wnids = [] {
    std::vector<std::string> out;
    std::istringstream in(kCanonicalWnidsText);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    // The build ships a checked file; a broken one is a bug, not a user error.
    if (out.size() != 1000 || !std::is_sorted(out.begin(), out.end()) ||
        std::adjacent_find(out.begin(), out.end()) != out.end()) {
      throw std::logic_error("compiled-in ImageNet wnid list is not 1000 sorted unique ids");
    }
    return out;
  }();
  return wnids;
}

bool is_wnid(const std::string& name) {
  return name.size() == 9 && name[0] == 'n' &&
         std::all_of(name.begin() + 1, name.end(), [](unsigned char c) { return std::isdigit(c); });
}

ClassIndex::ClassIndex(std::vector<std::string> sorted_wnids) : wnids_(std::move(sorted_wnids)) {
  require(std::is_sorted(wnids_.begin(), wnids_.end()), "class index: wnids must be sorted");
  for (size_t i = 0; i < wnids_.size(); ++i) {
    require(labels_.emplace(wnids_[i], static_cast<int64_t>(i)).second,
            "class index: duplicate wnid " + wnids_[i]);
  }
}

ClassIndex ClassIndex::canonical() { return ClassIndex(canonical_wnids()); }

ClassIndex ClassIndex::from_train_folder(const fs::path& train_dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(train_dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (is_wnid(name)) {
      found.push_back(name);
    } else {
      spdlog::warn("{}: ignoring folder '{}' (not a WordNet id)", train_dir.string(), name);
    }
  }
  require(!ec, "cannot list " + train_dir.string() + ": " + ec.message());
  require(!found.empty(), train_dir.string() + " has no WordNet-id class folders");
  std::sort(found.begin(), found.end());
  ClassIndex index(found);
  if (!index.is_canonical()) {
    const auto& canon = canonical_wnids();
    const std::set<std::string> known(canon.begin(), canon.end());
    const auto unknown = std::count_if(found.begin(), found.end(),
                                       [&](const std::string& w) { return !known.count(w); });
    const bool prefix =
        found.size() <= canon.size() && std::equal(found.begin(), found.end(), canon.begin());
    spdlog::warn(
        "{}: {} class folders instead of the 1000 ImageNet-1k ids ({} not among them{}); labels "
        "follow the sorted folder list",
        train_dir.string(), found.size(), unknown,
        prefix ? ", the first classes of the canonical order: labels coincide" : "");
  }
  return index;
}

ClassIndex ClassIndex::for_data_root(const fs::path& data_root) {
  const fs::path train = data_root / "imagenet" / "train";
  std::error_code ec;
  if (fs::is_directory(train, ec)) return from_train_folder(train);
  return canonical();
}

std::optional<int64_t> ClassIndex::find(const std::string& wnid) const {
  auto it = labels_.find(wnid);
  if (it == labels_.end()) return std::nullopt;
  return it->second;
}

bool ClassIndex::is_canonical() const { return wnids_ == canonical_wnids(); }

}  // namespace lth::data::imagenet
