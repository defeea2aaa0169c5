#include "data/ilsvrc/layouts.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <tuple>

#include "common/error.h"
#include "data/ilsvrc/devkit.h"

namespace lth::data::ilsvrc {
namespace fs = std::filesystem;
namespace img = data::imagenet;
namespace {

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return !p.empty() && fs::is_directory(p, ec);
}

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

std::vector<fs::path> image_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code t;
    if (e.is_regular_file(t) && is_image_name(e.path()) && e.path().filename().string().rfind('.', 0) != 0)
      out.push_back(e.path());
  }
  require(!ec, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// A folder holding images directly (and no class folders with images).
bool is_flat(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code t;
    if (e.is_regular_file(t) && is_image_name(e.path())) return true;
  }
  return false;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::error_code ec;
  require(fs::is_regular_file(path, ec), path.string() + ": no such label file");
  require(fs::file_size(path, ec) < (256u << 20), path.string() + ": over 256 MiB; not a label file");
  std::ifstream in(path);
  require(static_cast<bool>(in), path.string() + ": cannot open");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
    line.erase(0, b);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::optional<fs::path> devkit_in(const std::vector<fs::path>& dirs) {
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    if (auto k = find_devkit(d)) return k;
    std::error_code ec;
    if (fs::exists(d / "data" / "meta.mat", ec)) return d;  // the unpacked devkit itself
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& v2_variants() {
  static const std::vector<std::string> v = {"matched-frequency", "threshold0.7", "top-images"};
  return v;
}

std::string v2_release_folder(const std::string& variant) {
  require(std::find(v2_variants().begin(), v2_variants().end(), variant) != v2_variants().end(),
          "--v2_variant must be matched-frequency, threshold0.7 or top-images, not '" + variant + "'");
  return "imagenetv2-" + variant + "-format-val";
}

ImagenetLayout resolve_imagenet_layout(const fs::path& root, const LayoutOptions& options) {
  ImagenetLayout l;
  if (root.empty()) return l;
  const fs::path kaggle = root / "ILSVRC" / "Data" / "CLS-LOC";
  if (is_dir(root / "imagenet" / "train") || is_dir(root / "imagenet" / "val")) {
    l.kind = "lth folders";
    if (is_dir(root / "imagenet" / "train")) l.train_dir = root / "imagenet" / "train";
    if (is_dir(root / "imagenet" / "val")) l.val_dir = root / "imagenet" / "val";
  } else if (is_dir(kaggle / "train") || is_dir(kaggle / "val")) {
    l.kind = "Kaggle (ILSVRC/Data/CLS-LOC)";
    if (is_dir(kaggle / "train")) l.train_dir = kaggle / "train";
    if (is_dir(kaggle / "val")) l.val_dir = kaggle / "val";
    std::error_code ec;
    if (fs::exists(root / "LOC_val_solution.csv", ec)) l.val_label_file = root / "LOC_val_solution.csv";
  } else {
    return l;
  }
  if (!l.val_dir.empty() && is_flat(l.val_dir)) {
    l.val_flat = true;
    if (!options.val_labels.empty()) {
      l.val_label_file = options.val_labels;
    } else if (l.val_label_file.empty()) {
      if (auto kit = devkit_in({root})) l.val_label_file = *kit;
    }
    l.kind += l.val_label_file.empty() ? ", flat val without labels" : ", flat val + " + l.val_label_file.filename().string();
  }
  return l;
}

img::ClassIndex class_index_of(const ImagenetLayout& layout) {
  if (!layout.train_dir.empty()) return img::ClassIndex::from_train_folder(layout.train_dir);
  return img::ClassIndex::canonical();
}

std::vector<std::pair<fs::path, std::string>> label_flat_folder(const fs::path& dir, const fs::path& label_file,
                                                                const std::vector<fs::path>& devkit_dirs) {
  const auto files = image_files(dir);
  std::vector<std::pair<fs::path, std::string>> out;
  std::error_code ec;
  // A devkit (archive or folder) given as the label source: its ground truth, by file number.
  const bool devkit_source = fs::is_directory(label_file, ec) || label_file.filename().string().rfind("ILSVRC2012_devkit", 0) == 0;
  if (devkit_source) {
    const auto kit = read_devkit(label_file);
    for (const auto& f : files) {
      const std::string name = f.filename().string();
      int64_t k = -1;
      const std::string prefix = "ILSVRC2012_val_";
      if (name.rfind(prefix, 0) == 0) {
        const auto stem = f.stem().string().substr(prefix.size());
        const auto [p, err] = std::from_chars(stem.data(), stem.data() + stem.size(), k);
        if (err != std::errc() || p != stem.data() + stem.size()) k = -1;
      }
      require(k >= 1 && k <= static_cast<int64_t>(kit.val_ids.size()),
              f.string() + ": not an ILSVRC2012_val_<k> file the devkit's ground truth labels (" +
                  label_file.string() + ")");
      out.emplace_back(f, *kit.wnid(kit.val_ids[static_cast<size_t>(k - 1)]));
    }
    return out;
  }
  const auto lines = read_lines(label_file);
  require(!lines.empty(), label_file.string() + ": empty label file");
  if (lines.front().find(',') != std::string::npos) {  // CSV: image_id,wnid (Kaggle: ImageId,PredictionString)
    std::map<std::string, std::string> by_id;
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto comma = lines[i].find(',');
      require(comma != std::string::npos, label_file.string() + ": line " + std::to_string(i + 1) + " has no comma");
      std::string id = lines[i].substr(0, comma);
      std::string rest = lines[i].substr(comma + 1);
      const auto space = rest.find(' ');
      std::string wnid = rest.substr(0, space);
      if (i == 0 && !img::is_wnid(wnid)) continue;  // a header line
      require(img::is_wnid(wnid), label_file.string() + ": line " + std::to_string(i + 1) + ": '" +
                                      wnid.substr(0, 40) + "' is not a WordNet id");
      const auto dot = id.rfind('.');
      if (dot != std::string::npos && is_image_name(id)) id = id.substr(0, dot);  // "x.JPEG" or "x"
      by_id[id] = wnid;
    }
    std::vector<std::string> unlabelled;
    for (const auto& f : files) {
      const auto it = by_id.find(f.stem().string());
      if (it == by_id.end()) {
        unlabelled.push_back(f.filename().string());
        continue;
      }
      out.emplace_back(f, it->second);
    }
    require(unlabelled.empty(), label_file.string() + ": no row for " + std::to_string(unlabelled.size()) +
                                    " images of " + dir.string() + ", e.g. " +
                                    (unlabelled.empty() ? std::string() : unlabelled.front()));
    if (by_id.size() > files.size())
      spdlog::warn("{}: {} rows, {} images in {}: {} rows name no image", label_file.string(), by_id.size(),
                   files.size(), dir.string(), by_id.size() - files.size());
    return out;
  }
  // One label per line, in file-name order: wnids, or ILSVRC2012 ids through the devkit.
  require(lines.size() == files.size(),
          label_file.string() + ": " + std::to_string(lines.size()) + " labels for " + std::to_string(files.size()) +
              " images in " + dir.string() + " (one line per image, in file-name order)");
  std::optional<Devkit> kit;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& s = lines[i];
    if (img::is_wnid(s)) {
      out.emplace_back(files[i], s);
      continue;
    }
    int64_t id = -1;
    const auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), id);
    require(err == std::errc() && p == s.data() + s.size(),
            label_file.string() + ": line " + std::to_string(i + 1) + ": '" + s.substr(0, 40) +
                "' is neither a WordNet id nor an ILSVRC2012 class id");
    require(id >= 1 && id <= 1000,
            label_file.string() + ": line " + std::to_string(i + 1) + ": " + s +
                " is not an ILSVRC2012 class id (1..1000)" +
                (id == 0 ? "; 0-based labels in sorted-wnid order are ambiguous: write WordNet ids" : ""));
    if (!kit) {
      const auto where = devkit_in(devkit_dirs);
      require(where.has_value(),
              label_file.string() + ": ILSVRC2012 class ids need the devkit (ILSVRC2012_devkit_t12.tar.gz) "
                                    "to map them to WordNet ids; put it in the data root or beside the file");
      kit = read_devkit(*where);
    }
    out.emplace_back(files[i], *kit->wnid(id));
  }
  return out;
}

std::vector<img::Sample> list_val_samples(const ImagenetLayout& layout, const img::ClassIndex& index,
                                          const LayoutOptions& options) {
  (void)options;
  if (layout.val_dir.empty()) return {};
  if (!layout.val_flat) return img::list_wnid_folders(layout.val_dir, index);
  require(!layout.val_label_file.empty(),
          layout.val_dir.string() + ": a flat validation folder needs labels: --val_labels FILE (wnids or "
                                    "ILSVRC2012 ids per line in file-name order, or image_id,wnid CSV), or the "
                                    "devkit ILSVRC2012_devkit_t12.tar.gz in the data root");
  const auto root_guess = layout.val_dir.parent_path().parent_path();
  const auto labelled = label_flat_folder(
      layout.val_dir, layout.val_label_file,
      {layout.val_label_file.parent_path(), layout.val_label_file.parent_path().parent_path(), root_guess,
       root_guess.parent_path(), root_guess.parent_path().parent_path()});
  std::vector<img::Sample> out;
  int64_t outside = 0;
  for (const auto& [file, wnid] : labelled) {
    const auto l = index.find(wnid);
    if (!l) {
      ++outside;
      continue;
    }
    out.push_back(img::Sample{file, *l});
  }
  if (outside > 0)
    spdlog::warn("{}: {} images labelled with classes outside the {}-class index are left out", layout.val_dir.string(),
                 outside, index.size());
  std::stable_sort(out.begin(), out.end(), [](const img::Sample& a, const img::Sample& b) {
    return std::tie(a.label, a.path) < std::tie(b.label, b.path);
  });
  return out;
}

std::optional<fs::path> test_set_folder(const fs::path& root, const std::string& set, const LayoutOptions& options) {
  std::vector<fs::path> candidates = {root / set};
  if (set == "imagenet-v2") candidates.push_back(root / v2_release_folder(options.v2_variant));
  if (set == "imagenet-sketch") candidates.push_back(root / "sketch");
  for (const auto& c : candidates) {
    if (is_dir(c)) return c;
  }
  return std::nullopt;
}

}  // namespace lth::data::ilsvrc
