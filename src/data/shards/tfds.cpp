#include "data/shards/tfds.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>

#include "common/error.h"

namespace lth::data::shards {
namespace fs = std::filesystem;
namespace {

std::optional<std::vector<int>> parse_version(const std::string& s) {
  static const std::regex pattern("([0-9]+)\\.([0-9]+)\\.([0-9]+)");
  std::smatch m;
  if (!std::regex_match(s, m, pattern)) return std::nullopt;
  return std::vector<int>{std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

std::optional<fs::path> highest_version(const fs::path& builder_dir) {
  std::error_code ec;
  if (!fs::is_directory(builder_dir, ec)) return std::nullopt;
  std::optional<fs::path> best;
  std::vector<int> best_v;
  for (const auto& e : fs::directory_iterator(builder_dir, ec)) {
    const auto v = parse_version(e.path().filename().string());
    if (!v || !fs::exists(e.path() / "dataset_info.json")) continue;
    if (!best || *v > best_v) {
      best = e.path();
      best_v = *v;
    }
  }
  return best;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  require(static_cast<bool>(in), path.string() + ": cannot open");
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  require(!j.is_discarded() && j.is_object(), path.string() + ": not a JSON object");
  return j;
}

// TFDS writes int64 as JSON strings ("1251"); accept numbers too.
int64_t as_int(const nlohmann::json& v, const fs::path& file, const std::string& what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (!s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), ::isdigit)) return std::stoll(s);
  }
  throw UserError(file.string() + ": " + what + " is not a non-negative integer");
}

std::string expand_template(std::string tpl, const std::string& dataset, const std::string& split,
                            int64_t shard, int64_t num) {
  const auto replace = [&](const std::string& key, const std::string& value) {
    for (size_t p; (p = tpl.find(key)) != std::string::npos;) tpl.replace(p, key.size(), value);
  };
  char xy[32];
  std::snprintf(xy, sizeof xy, "%05lld-of-%05lld", static_cast<long long>(shard), static_cast<long long>(num));
  replace("{DATASET}", dataset);
  replace("{SPLIT}", split);
  replace("{FILEFORMAT}", "tfrecord");
  replace("{SHARD_X_OF_Y}", xy);
  return tpl;
}

// The shard count Y of the files named by `tpl` with {SHARD_X_OF_Y} = "XXXXX-of-YYYYY" in `dir`
// (0 when none); files disagreeing on Y are an error naming two of them.
int64_t shards_by_template(const fs::path& dir, const std::string& tpl, const std::string& dataset,
                           const std::string& split, const fs::path& info_path) {
  const std::string probe = expand_template(tpl, dataset, split, 0, 0);  // "...-00000-of-00000"
  const std::string marker = "00000-of-00000";
  const auto at = probe.rfind(marker);
  require(at != std::string::npos, info_path.string() + ": split '" + split +
                                       "' states no shard counts and its file template has no "
                                       "{SHARD_X_OF_Y} to find the files by");
  const std::string head = probe.substr(0, at), tail = probe.substr(at + marker.size());
  int64_t num = 0;
  std::string first;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != probe.size() || name.compare(0, head.size(), head) != 0 ||
        name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    const std::string xy = name.substr(head.size(), marker.size());
    if (xy.substr(5, 4) != "-of-" ||
        !std::all_of(xy.begin(), xy.begin() + 5, ::isdigit) ||
        !std::all_of(xy.begin() + 9, xy.end(), ::isdigit))
      continue;
    const int64_t y = std::stoll(xy.substr(9));
    require(num == 0 || y == num, info_path.string() + ": split '" + split + "': shard files " + first +
                                      " and " + name + " disagree on the number of shards");
    num = y;
    if (first.empty()) first = name;
  }
  return num;
}

void read_features(const fs::path& dir, TfdsBuilder& b) {
  const auto path = dir / "features.json";
  if (!fs::exists(path)) return;  // older TFDS: the defaults "image" and "label"
  const auto j = read_json(path);
  const auto* features = &j;
  if (j.contains("featuresDict")) features = &j["featuresDict"];
  if (!features->contains("features") || !(*features)["features"].is_object()) return;
  std::string image, label;
  for (const auto& [name, f] : (*features)["features"].items()) {
    const std::string cls = f.value("pythonClassName", "");
    if (image.empty() && (cls.find("image_feature.Image") != std::string::npos || f.contains("image"))) image = name;
    if (label.empty() && (cls.find("ClassLabel") != std::string::npos || f.contains("classLabel"))) {
      label = name;
      if (f.contains("classLabel") && f["classLabel"].contains("numClasses")) {
        b.num_classes = as_int(f["classLabel"]["numClasses"], path, "numClasses of '" + name + "'");
      }
    }
  }
  if (!image.empty()) b.image_feature = image;
  if (!label.empty()) b.label_feature = label;
}

}  // namespace

const TfdsSplit* TfdsBuilder::split(const std::string& n) const {
  for (const auto& s : splits) {
    if (s.name == n) return &s;
  }
  return nullptr;
}

std::optional<fs::path> find_tfds_version(const fs::path& data_dir, const std::string& builder,
                                          const std::vector<std::string>& configs) {
  std::error_code ec;
  if (fs::exists(data_dir / "dataset_info.json", ec)) {
    const auto j = read_json(data_dir / "dataset_info.json");
    if (j.value("name", "") == builder) return data_dir;
    return std::nullopt;
  }
  // data_dir may also be the builder folder itself.
  if (data_dir.filename() == builder) {
    if (auto v = highest_version(data_dir)) return v;
  }
  for (const auto& config : configs) {
    if (auto v = highest_version(data_dir / builder / config)) return v;
  }
  return highest_version(data_dir / builder);
}

TfdsBuilder read_tfds_builder(const fs::path& dir) {
  const auto info_path = dir / "dataset_info.json";
  const auto info = read_json(info_path);
  TfdsBuilder b;
  b.dir = dir;
  b.name = info.value("name", "");
  b.version = info.value("version", dir.filename().string());
  require(!b.name.empty(), info_path.string() + ": no dataset name");
  const std::string format = info.value("fileFormat", "tfrecord");
  require(format == "tfrecord", info_path.string() + ": file format '" + format +
                                    "' is not supported (only tfrecord)");
  require(info.contains("splits") && info["splits"].is_array(), info_path.string() + ": no splits");
  for (const auto& s : info["splits"]) {
    TfdsSplit split;
    split.name = s.value("name", "");
    require(!split.name.empty(), info_path.string() + ": a split without a name");
    const std::string tpl = s.value("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}");
    if (s.contains("shardLengths")) {
      for (const auto& n : s["shardLengths"]) {
        split.shard_lengths.push_back(as_int(n, info_path, "a shardLengths entry of split '" + split.name + "'"));
      }
    }
    // Older TFDS (before shardLengths) stated only "numShards"; counts then come from the files.
    // Some hand-made or partly written infos state neither: the files matching the name
    // template are then the split (records counted at open, with a warning).
    int64_t num = static_cast<int64_t>(split.shard_lengths.size());
    if (split.shard_lengths.empty() && s.contains("numShards")) {
      num = as_int(s["numShards"], info_path, "numShards of split '" + split.name + "'");
    } else if (split.shard_lengths.empty()) {
      num = shards_by_template(dir, tpl, b.name, split.name, info_path);
      split.counts_from_files = true;
    }
    for (int64_t i = 0; i < num; ++i) {
      const auto file = dir / expand_template(tpl, b.name, split.name, i, num);
      require(fs::exists(file), file.string() + ": shard listed in " + info_path.string() + " is missing");
      split.files.push_back(file);
    }
    b.splits.push_back(std::move(split));
  }
  read_features(dir, b);
  const auto labels = dir / (b.label_feature + ".labels.txt");
  if (fs::exists(labels)) {
    std::ifstream in(labels);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) b.label_names.push_back(line);
    }
  }
  return b;
}

std::string tfds_shard_name(const std::string& builder, const std::string& split, int64_t shard,
                            int64_t num_shards) {
  return expand_template("{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", builder, split, shard, num_shards);
}

void write_tfds_metadata(const fs::path& dir, const TfdsMetadata& meta) {
  fs::create_directories(dir);
  nlohmann::json splits = nlohmann::json::array();
  for (const auto& [name, lengths] : meta.splits) {
    nlohmann::json l = nlohmann::json::array();
    int64_t total = 0;
    for (int64_t n : lengths) {
      l.push_back(std::to_string(n));  // int64 as strings, as protobuf's JSON mapping writes
      total += n;
    }
    splits.push_back({{"name", name},
                      {"shardLengths", l},
                      {"filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"},
                      {"numExamples", std::to_string(total)}});
  }
  const nlohmann::json info = {{"name", meta.name},
                               {"version", meta.version},
                               {"fileFormat", "tfrecord"},
                               {"moduleName", "written by lth make-shards"},
                               {"splits", splits}};
  nlohmann::json features = {
      {"image",
       {{"pythonClassName", "tensorflow_datasets.core.features.image_feature.Image"},
        {"image", {{"shape", {{"dimensions", {"-1", "-1", "3"}}}}, {"dtype", "uint8"}, {"encodingFormat", "jpeg"}}}}},
      {"label",
       {{"pythonClassName", "tensorflow_datasets.core.features.class_label_feature.ClassLabel"},
        {"classLabel", {{"numClasses", std::to_string(meta.num_classes)}}}}}};
  if (meta.file_name_feature) {
    features["file_name"] = {{"pythonClassName", "tensorflow_datasets.core.features.text_feature.Text"},
                             {"text", nlohmann::json::object()}};
  }
  const nlohmann::json feat = {
      {"pythonClassName", "tensorflow_datasets.core.features.features_dict.FeaturesDict"},
      {"featuresDict", {{"features", features}}}};
  std::ofstream(dir / "dataset_info.json") << info.dump(2) << "\n";
  std::ofstream(dir / "features.json") << feat.dump(2) << "\n";
  if (!meta.label_names.empty()) {
    std::ofstream out(dir / "label.labels.txt");
    for (const auto& n : meta.label_names) out << n << "\n";
  }
}

}  // namespace lth::data::shards
