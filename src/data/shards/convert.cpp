#include "data/shards/convert.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <tuple>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "data/ilsvrc/official.h"
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
  for (const auto& s : samples) {
    SourceSample source;
    source.path = s.path;
    source.label = stored_label(s.label);
    out.push_back(source);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, int64_t>> convert_official_to_shards(const ConvertOptions& o,
                                                                        std::vector<std::string>* problems) {
  namespace ils = data::ilsvrc;
  std::error_code ec;
  require(fs::is_directory(o.from, ec), "--from " + o.from.string() + " is not a folder");
  const auto files = ils::find_official(o.from);
  require(files.train_tar || files.val_tar,
          "--from " + o.from.string() + " holds neither ILSVRC2012_img_train.tar nor ILSVRC2012_img_val.tar");
  require(!files.val_tar || files.devkit,
          "--from " + o.from.string() + ": ILSVRC2012_img_val.tar needs ILSVRC2012_devkit_t12.tar.gz beside it");
  // Resume only our own interrupted output: the marker names the source it was made from.
  const fs::path marker = o.to / ".lth-make-shards";
  const std::string source = fs::absolute(o.from).lexically_normal().string() + "\n";
  if (fs::exists(o.to, ec) && !fs::is_empty(o.to, ec)) {
    std::ifstream in(marker);
    const std::string was(std::istreambuf_iterator<char>(in), {});
    require(was == source, "--to " + o.to.string() +
                               " exists and is not empty (and is not an interrupted make-shards of this --from)");
    spdlog::info("{}: resuming an interrupted make-shards; finished shards are kept", o.to.string());
  } else {
    fs::create_directories(o.to);
    std::ofstream(marker) << source;
  }
  std::vector<std::pair<std::string, int64_t>> written;
  std::vector<std::string> issues;
  ils::OfficialSplit train, val;
  if (files.train_tar) train = ils::index_official_train(*files.train_tar);
  // Labels as the folder reader of the prepared layout gives them: the train tar's classes.
  const auto index = train.wnids.empty() ? img::ClassIndex::canonical() : img::ClassIndex(train.wnids);
  if (files.val_tar) val = ils::index_official_val(*files.val_tar, ils::read_devkit(*files.devkit));
  const auto sources = [&](const ils::OfficialSplit& split) {
    issues.insert(issues.end(), split.problems.begin(), split.problems.end());
    std::vector<SourceSample> out;
    for (const auto& t : split.samples) {
      const auto l = index.find(t.wnid);
      if (!l) continue;  // a val class without train images: outside the label space
      out.push_back(SourceSample{t.tar, *l, t.wnid + "/" + fs::path(t.file_name).stem().string(), t.offset,
                                 static_cast<int64_t>(t.size), t.file_name});
    }
    std::stable_sort(out.begin(), out.end(), [](const SourceSample& a, const SourceSample& b) {
      return std::tie(a.label, a.file_name) < std::tie(b.label, b.file_name);
    });
    return out;
  };
  const std::vector<std::tuple<std::string, const ils::OfficialSplit*, std::string, std::string>> splits = {
      {"imagenet/train", files.train_tar ? &train : nullptr, "train", "train"},
      {"imagenet", files.val_tar ? &val : nullptr, "val", "validation"}};
  if (o.format == ShardFormat::WebDataset) {
    for (const auto& [set, split, prefix, tfds_split] : splits) {
      if (!split) continue;
      const auto samples = sources(*split);
      write_webdataset_shards(samples, o.to / prefix, prefix, o.shard_size, /*resume=*/true);
      written.emplace_back(set, static_cast<int64_t>(samples.size()));
    }
    std::ofstream out(o.to / "classes.txt");
    for (const auto& w : index.wnids()) out << w << "\n";
  } else {
    TfdsMetadata meta{"imagenet2012", "5.1.0", {}, index.size(), index.wnids(), true};
    const auto dir = o.to / "imagenet2012" / meta.version;
    for (const auto& [set, split, prefix, tfds_split] : splits) {
      if (!split) continue;
      const auto samples = sources(*split);
      meta.splits.emplace_back(tfds_split, write_tfrecord_shards(samples, dir, meta.name, tfds_split, o.shard_size,
                                                                 /*resume=*/true));
      written.emplace_back(set, static_cast<int64_t>(samples.size()));
    }
    write_tfds_metadata(dir, meta);
  }
  for (const auto& p : issues) spdlog::warn("{}", p);
  if (problems) *problems = issues;
  fs::remove(marker);  // complete: no longer an interrupted run
  return written;
}

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
