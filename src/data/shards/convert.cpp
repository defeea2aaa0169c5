#include "data/shards/convert.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <tuple>

#include "common/error.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/subset_classes.h"
#include "data/shards/shard_writer.h"
#include "data/shards/tfds.h"

namespace lth::data::shards {
namespace fs = std::filesystem;
namespace img = data::imagenet;
namespace {

std::vector<SourceSample> to_sources(const std::vector<img::Sample>& samples,
                                     const std::function<int64_t(int64_t)>& stored_label) {
  std::vector<SourceSample> out;
  out.reserve(samples.size());
  for (const auto& s : samples) out.push_back(SourceSample{s.path, stored_label(s.label), ""});
  return out;
}

}  // namespace

ShardFormat parse_shard_format(const std::string& name) {
  if (name == "tfrecord" || name == "tfds") return ShardFormat::TFRecord;
  if (name == "webdataset" || name == "wds" || name == "tar") return ShardFormat::WebDataset;
  throw UserError("--format must be tfrecord or webdataset, not '" + name + "'");
}

std::vector<std::pair<std::string, int64_t>> convert_folders_to_shards(const ConvertOptions& o) {
  std::error_code ec;
  require(fs::is_directory(o.from, ec), "--from " + o.from.string() + " is not a folder");
  require(!fs::exists(o.to, ec) || fs::is_empty(o.to, ec),
          "--to " + o.to.string() + " exists and is not empty");
  const auto index = img::ClassIndex::for_data_root(o.from);
  const auto canonical = img::ClassIndex::canonical();
  const auto canonical_label = [&](int64_t l) {
    const auto c = canonical.find(index.wnid(l));
    return c ? *c : l;
  };
  const auto identity = [](int64_t l) { return l; };
  std::vector<std::pair<std::string, int64_t>> written;

  if (o.format == ShardFormat::WebDataset) {
    for (const auto& [set, folder, prefix] : {std::tuple{"imagenet/train", "imagenet/train", "train"},
                                              std::tuple{"imagenet", "imagenet/val", "val"}}) {
      if (!fs::is_directory(o.from / folder, ec)) continue;
      const auto samples = to_sources(img::list_wnid_folders(o.from / folder, index), identity);
      write_webdataset_shards(samples, o.to / prefix, prefix, o.shard_size);
      written.emplace_back(set, static_cast<int64_t>(samples.size()));
    }
    require(!written.empty(), "--from " + o.from.string() + " has no imagenet/train or imagenet/val");
    std::ofstream out(o.to / "classes.txt");
    for (const auto& w : index.wnids()) out << w << "\n";
    return written;
  }

  // TFDS: imagenet2012 with the index's labels and names.
  {
    TfdsMetadata meta{"imagenet2012", "5.1.0", {}, index.size(), index.wnids(), true};
    const auto dir = o.to / "imagenet2012" / meta.version;
    for (const auto& [set, folder, split] : {std::tuple{"imagenet/train", "imagenet/train", "train"},
                                             std::tuple{"imagenet", "imagenet/val", "validation"}}) {
      if (!fs::is_directory(o.from / folder, ec)) continue;
      const auto samples = to_sources(img::list_wnid_folders(o.from / folder, index), identity);
      meta.splits.emplace_back(split, write_tfrecord_shards(samples, dir, meta.name, split, o.shard_size));
      written.emplace_back(set, static_cast<int64_t>(samples.size()));
    }
    if (!meta.splits.empty()) write_tfds_metadata(dir, meta);
  }
  // The test sets, with TFDS's label conventions (docs/DATA.md).
  const auto write_test = [&](const std::string& set, const fs::path& dir, const std::string& builder,
                              const std::vector<SourceSample>& samples, int64_t num_classes,
                              std::vector<std::string> names) {
    TfdsMetadata meta{builder, dir.filename().string(), {}, num_classes, std::move(names), true};
    meta.splits.emplace_back("test", write_tfrecord_shards(samples, dir, builder, "test", o.shard_size));
    write_tfds_metadata(dir, meta);
    written.emplace_back(set, static_cast<int64_t>(samples.size()));
  };
  if (fs::is_directory(o.from / "imagenet-v2", ec)) {
    const auto samples = to_sources(img::list_numeric_folders(o.from / "imagenet-v2", index.size()),
                                    canonical_label);
    write_test("imagenet-v2", o.to / "imagenet_v2" / "matched-frequency" / "3.0.0", "imagenet_v2", samples,
               canonical.size(), canonical.wnids());
  }
  for (const auto& [set, builder, version] : {std::tuple{"imagenet-r", "imagenet_r", "0.2.0"},
                                              std::tuple{"imagenet-a", "imagenet_a", "0.1.0"}}) {
    if (!fs::is_directory(o.from / set, ec)) continue;
    const auto folder = img::list_wnid_folders(o.from / set, index);
    // Stored labels: positions in the set's fixed 200-class list (data/imagenet/subset_classes.h),
    // which are its label names, as the real TFDS builds store them.
    const auto names = img::subset_wnids(*img::subset_list_for(set));
    const auto position = [&](int64_t l) {
      return static_cast<int64_t>(std::find(names.begin(), names.end(), index.wnid(l)) - names.begin());
    };
    write_test(set, o.to / builder / version, builder, to_sources(folder, position),
               static_cast<int64_t>(names.size()), names);
  }
  if (fs::is_directory(o.from / "imagenet-sketch", ec)) {
    const auto samples = to_sources(img::list_wnid_folders(o.from / "imagenet-sketch", index), canonical_label);
    write_test("imagenet-sketch", o.to / "imagenet_sketch" / "0.2.0", "imagenet_sketch", samples,
               canonical.size(), canonical.wnids());
  }
  require(!written.empty(), "--from " + o.from.string() + " holds none of the ImageNet folder layouts");
  return written;
}

}  // namespace lth::data::shards
