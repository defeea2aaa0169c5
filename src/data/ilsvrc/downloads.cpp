#include "data/ilsvrc/downloads.h"

#include <algorithm>
#include <fstream>
#include <random>

#include "common/error.h"
#include "data/ilsvrc/devkit.h"
#include "data/ilsvrc/official.h"
#include "data/imagenet/class_index.h"

namespace lth::data::ilsvrc {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> sorted(const fs::path& d, bool dirs) {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d, ec)) {
    if (dirs ? e.is_directory() : e.is_regular_file()) v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

// The val files of a folder root as (file, wnid), sorted by file name (their flat order).
std::vector<std::pair<fs::path, std::string>> val_files(const fs::path& root) {
  std::vector<std::pair<fs::path, std::string>> out;
  for (const auto& cls : sorted(root / "imagenet" / "val", true)) {
    for (const auto& f : sorted(cls, false)) out.emplace_back(f, cls.filename().string());
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.first.filename() < b.first.filename(); });
  return out;
}

void copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return;
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

void release_test_sets(const fs::path& root, const fs::path& out) {
  copy_tree(root / "imagenet-v2", out / "imagenetv2-matched-frequency-format-val");
  copy_tree(root / "imagenet-r", out / "imagenet-r");
  copy_tree(root / "imagenet-a", out / "imagenet-a");
  copy_tree(root / "imagenet-sketch", out / "sketch");
}

int32_t id_of(const std::vector<std::string>& ids, const std::string& wnid) {
  const auto it = std::find(ids.begin(), ids.end(), wnid);
  require(it != ids.end(), wnid + ": not an ImageNet-1k class");
  return static_cast<int32_t>(it - ids.begin());
}

}  // namespace

DownloadLayout parse_download_layout(const std::string& name) {
  if (name == "official") return DownloadLayout::Official;
  if (name == "kaggle") return DownloadLayout::Kaggle;
  if (name == "flat") return DownloadLayout::Flat;
  throw UserError("unknown download layout '" + name + "' (official, kaggle, flat)");
}

std::vector<std::string> permuted_ids(uint64_t seed) {
  std::vector<std::string> w = imagenet::canonical_wnids();
  std::mt19937_64 rng(seed ^ 0x1157c2012ULL);
  std::shuffle(w.begin(), w.end(), rng);
  if (std::is_sorted(w.begin(), w.end())) std::reverse(w.begin(), w.end());
  w.insert(w.begin(), "");
  return w;
}

void write_download_layout(const fs::path& root, const fs::path& out, DownloadLayout layout, uint64_t seed) {
  std::error_code ec;
  require(!fs::exists(out, ec) || fs::is_empty(out, ec), out.string() + " exists and is not empty");
  fs::create_directories(out);
  const auto ids = permuted_ids(seed);
  switch (layout) {
    case DownloadLayout::Official:
      write_official_from_folders(root, out, ids);
      break;
    case DownloadLayout::Kaggle: {
      const fs::path base = out / "ILSVRC" / "Data" / "CLS-LOC";
      copy_tree(root / "imagenet" / "train", base / "train");
      fs::create_directories(base / "val");
      std::ofstream csv(out / "LOC_val_solution.csv");
      csv << "ImageId,PredictionString\n";
      for (const auto& [f, wnid] : val_files(root)) {
        fs::copy_file(f, base / "val" / f.filename());
        csv << f.stem().string() << "," << wnid << " 12 34 200 180 " << wnid << " 5 6 70 80\n";
      }
      std::ofstream map(out / "LOC_synset_mapping.txt");
      for (const auto& w : imagenet::canonical_wnids()) map << w << " words of " << w << "\n";
      break;
    }
    case DownloadLayout::Flat: {
      copy_tree(root / "imagenet" / "train", out / "imagenet" / "train");
      fs::create_directories(out / "imagenet" / "val");
      std::ofstream names(out / "val_labels.txt"), numbers(out / "val_ids.txt");
      std::vector<int32_t> truth;
      for (const auto& [f, wnid] : val_files(root)) {
        fs::copy_file(f, out / "imagenet" / "val" / f.filename());
        names << wnid << "\n";
        numbers << id_of(ids, wnid) << "\n";
        truth.push_back(id_of(ids, wnid));  // make-imagenet numbers val files 1..N, so the lists agree
      }
      write_devkit(out / "ILSVRC2012_devkit_t12.tar.gz", ids, truth);
      break;
    }
  }
  release_test_sets(root, out);
}

}  // namespace lth::data::ilsvrc
