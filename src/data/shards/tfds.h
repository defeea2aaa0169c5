#pragma once
// TFDS data directories: <data_dir>/<builder>[/<config>]/<version>/ holding
//   dataset_info.json   splits: [{"name": "train", "shardLengths": ["1251", ...],
//                                 "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]
//   features.json       feature names and kinds (Image, ClassLabel with numClasses)
//   <label>.labels.txt  ClassLabel names, one per line, in label order
//   <builder>-<split>.tfrecord-00000-of-01024 ...
// read_tfds_builder finds the splits, their files and counts (shardLengths, else the older
// numShards, else -- hand-made or partly written infos -- the files the template names, with
// a warning at open), and the image and label feature names; find_tfds_version picks the highest version holding dataset_info.json.
// write_tfds_split / write_tfds_metadata write the same layout (lth make-shards).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lth::data::shards {

struct TfdsSplit {
  std::string name;
  std::vector<std::filesystem::path> files;
  std::vector<int64_t> shard_lengths;  // as dataset_info.json states them (empty: only numShards)
  // dataset_info.json states neither shardLengths nor numShards: `files` are those matching
  // the file-name template, and the records are counted when the split is opened.
  bool counts_from_files = false;
};

struct TfdsBuilder {
  std::filesystem::path dir;  // the version folder
  std::string name;           // "imagenet2012", "imagenet_v2", ...
  std::string version;
  std::vector<TfdsSplit> splits;
  std::string image_feature = "image";
  std::string label_feature = "label";
  int64_t num_classes = 0;               // from features.json (0 = not stated)
  std::vector<std::string> label_names;  // from <label>.labels.txt (empty = absent)

  const TfdsSplit* split(const std::string& name) const;
};

// `dir` itself when it holds dataset_info.json, else the highest version folder (x.y.z,
// numerically) under dir/<builder>[/<config>] that does; nullopt when none.
std::optional<std::filesystem::path> find_tfds_version(const std::filesystem::path& data_dir,
                                                       const std::string& builder,
                                                       const std::vector<std::string>& configs = {});
// UserError naming the file for malformed metadata or a missing shard file.
TfdsBuilder read_tfds_builder(const std::filesystem::path& version_dir);

// The shard file name TFDS uses: "<builder>-<split>.tfrecord-00003-of-00016".
std::string tfds_shard_name(const std::string& builder, const std::string& split, int64_t shard,
                            int64_t num_shards);

struct TfdsMetadata {
  std::string name;
  std::string version;
  std::vector<std::pair<std::string, std::vector<int64_t>>> splits;  // name, shard lengths
  int64_t num_classes = 0;
  std::vector<std::string> label_names;
  bool file_name_feature = true;
};
// dataset_info.json, features.json and label.labels.txt in `version_dir`.
void write_tfds_metadata(const std::filesystem::path& version_dir, const TfdsMetadata& meta);

}  // namespace lth::data::shards
