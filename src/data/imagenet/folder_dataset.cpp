#include "data/imagenet/folder_dataset.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "common/error.h"

namespace lth::data::imagenet {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    // Folders for classes, regular files for samples: a FIFO, socket or device named like
    // an image is not listed (opening a FIFO would block a worker forever).
    std::error_code type_ec;
    const bool wanted =
        directories ? entry.is_directory(type_ec) : entry.is_regular_file(type_ec);
    if (wanted && entry.path().filename().string().rfind('.', 0) != 0) {
      out.push_back(entry.path());
    }
  }
  require(!ec, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

void add_class_files(const fs::path& class_dir, int64_t label, std::vector<Sample>& samples,
                     std::set<int64_t>& present) {
  for (const auto& file : sorted_entries(class_dir, false)) {
    if (!is_image_name(file)) continue;
    samples.push_back(Sample{file, label});
    present.insert(label);
  }
}

void check_folder(const fs::path& dir) {
  std::error_code ec;
  require(fs::is_directory(dir, ec), dir.string() + " is not a folder");
}

std::vector<int64_t> as_vector(const std::set<int64_t>& s) { return {s.begin(), s.end()}; }

}  // namespace

ImageFolderDataset::ImageFolderDataset(std::string name, std::vector<Sample> samples,
                                       int64_t num_classes, std::vector<int64_t> class_subset,
                                       FolderOptions options)
    : name_(std::move(name)),
      samples_(std::move(samples)),
      num_classes_(num_classes),
      class_subset_(std::move(class_subset)),
      options_(options),
      spec_{options.size, options.train, options.dct_scaling} {
  require(options_.size > 0, "image size must be positive");
}

std::optional<Example> ImageFolderDataset::get(int64_t index, Rng& rng) const {
  auto image = torch::empty({options_.size, options_.size, 3}, torch::kUInt8);
  const auto label = get_into(index, rng, image.data_ptr<uint8_t>());
  if (!label) return std::nullopt;
  return Example{image, *label};
}

std::optional<int64_t> ImageFolderDataset::get_into(int64_t index, Rng& rng, uint8_t* slot) const {
  const Sample& sample = samples_.at(static_cast<size_t>(index));
  thread_local std::vector<uint8_t> bytes;  // reused across calls of one worker
  try {
    try {
      read_file(sample.path, bytes, options_.limits.max_file_bytes);
      decode_and_transform(bytes.data(), bytes.size(), spec_, options_.limits, rng, slot);
    } catch (const std::bad_alloc&) {
      // Within the caps a picture may still not fit the memory left: that file is skipped.
      throw DecodeError("out of memory decoding it");
    }
  } catch (const DecodeError& e) {
    unreadable_.fetch_add(1);
    if (options_.strict) throw UserError(sample.path.string() + ": " + e.what());
    spdlog::warn("skipping unreadable image {}: {}", sample.path.string(), e.what());
    return std::nullopt;
  }
  return sample.label;
}

std::string ImageFolderDataset::describe() const {
  return name_ + " (" + std::to_string(samples_.size()) + " images, " +
         (options_.train ? "train" : "eval") + " transform, " + std::to_string(options_.size) +
         "px)";
}

std::vector<Sample> list_wnid_folders(const fs::path& dir, const ClassIndex& index,
                                      std::vector<int64_t>* present) {
  check_folder(dir);
  std::vector<Sample> samples;
  std::set<int64_t> labels;
  for (const auto& class_dir : sorted_entries(dir, true)) {
    const std::string name = class_dir.filename().string();
    const auto label = index.find(name);
    if (!label) {
      spdlog::warn("{}: skipping folder '{}': not one of the {} classes of the index", dir.string(),
                   name, index.size());
      continue;
    }
    add_class_files(class_dir, *label, samples, labels);
  }
  if (present != nullptr) *present = as_vector(labels);
  return samples;
}

std::vector<Sample> list_numeric_folders(const fs::path& dir, int64_t num_classes,
                                         std::vector<int64_t>* present) {
  check_folder(dir);
  std::vector<std::pair<int64_t, fs::path>> classes;
  for (const auto& class_dir : sorted_entries(dir, true)) {
    const std::string name = class_dir.filename().string();
    int64_t label = -1;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), label);
    if (err != std::errc() || end != name.data() + name.size() || label < 0 ||
        label >= num_classes) {
      spdlog::warn("{}: skipping folder '{}': not a class number in 0..{}", dir.string(), name,
                   num_classes - 1);
      continue;
    }
    classes.emplace_back(label, class_dir);
  }
  std::sort(classes.begin(), classes.end());  // numeric order, not "10" < "2"
  std::vector<Sample> samples;
  std::set<int64_t> labels;
  for (const auto& [label, class_dir] : classes) add_class_files(class_dir, label, samples, labels);
  if (present != nullptr) *present = as_vector(labels);
  return samples;
}

std::shared_ptr<ImageFolderDataset> open_wnid_dataset(const std::string& name, const fs::path& dir,
                                                      const ClassIndex& index,
                                                      const FolderOptions& options) {
  auto samples = list_wnid_folders(dir, index);
  return std::make_shared<ImageFolderDataset>(name, std::move(samples), index.size(),
                                              std::vector<int64_t>{}, options);
}

std::shared_ptr<ImageFolderDataset> open_wnid_subset_dataset(const std::string& name,
                                                             const fs::path& dir,
                                                             const ClassIndex& index,
                                                             SubsetList list,
                                                             const FolderOptions& options) {
  check_folder(dir);
  const auto wnids = subset_wnids(list);
  const std::set<std::string> listed(wnids.begin(), wnids.end());
  std::set<std::string> found;
  for (const auto& class_dir : sorted_entries(dir, true)) {
    const std::string folder = class_dir.filename().string();
    require(listed.count(folder) > 0, class_dir.string() + ": not one of the 200 " +
                                          subset_list_name(list) + " classes (docs/DATA.md)");
    found.insert(folder);
  }
  std::vector<std::string> absent;  // listed, in the index, but without a folder
  for (const auto& wnid : wnids) {
    if (found.count(wnid) == 0 && index.find(wnid)) absent.push_back(wnid);
  }
  if (!absent.empty() && !found.empty()) {
    std::string list_text;
    for (size_t i = 0; i < absent.size() && i < 8; ++i) list_text += (i ? " " : "") + absent[i];
    spdlog::warn("{}: {} of the {} classes have no folder ({}{}); they still take part in the "
                 "projection",
                 dir.string(), absent.size(), subset_list_name(list), list_text,
                 absent.size() > 8 ? " ..." : "");
  }
  std::vector<std::string> not_in_index;
  auto columns = subset_labels(list, index, &not_in_index);
  if (!not_in_index.empty()) {
    spdlog::warn("{}: the class index has {} classes; {} of the 200 {} classes are not among them "
                 "and are left out of the projection ({}-way)",
                 dir.string(), index.size(), not_in_index.size(), subset_list_name(list),
                 columns.size());
  }
  auto samples = list_wnid_folders(dir, index);
  return std::make_shared<ImageFolderDataset>(name, std::move(samples), index.size(),
                                              std::move(columns), options);
}

std::shared_ptr<ImageFolderDataset> open_numeric_dataset(const std::string& name,
                                                         const fs::path& dir, int64_t num_classes,
                                                         const FolderOptions& options) {
  auto samples = list_numeric_folders(dir, num_classes);
  return std::make_shared<ImageFolderDataset>(name, std::move(samples), num_classes,
                                              std::vector<int64_t>{}, options);
}

}  // namespace lth::data::imagenet
