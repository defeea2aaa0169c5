// ImageNet as downloaded -- the official tars (a devkit with a permuted id order), Kaggle's
// tree and CSV, a flat val folder with label files, the test sets' release names -- gives the
// same samples and labels as lth's own layout, through the dataset registry (training), the
// evaluation suite (lth eval), `lth prepare-imagenet` and `lth make-shards --from` the tars;
// and `lth data check` finds each kind of damage.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "common/error.h"
#include "data/check/data_check.h"
#include "data/ilsvrc/devkit.h"
#include "data/ilsvrc/downloads.h"
#include "data/ilsvrc/layouts.h"
#include "data/ilsvrc/official.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "data/registry.h"
#include "data/shards/convert.h"
#include "data/shards/shard_dataset.h"
#include "eval/suite.h"
#include "ilsvrc_test_util.h"

namespace lth::data::ilsvrc {
namespace {

namespace fs = std::filesystem;
using ilsvrc_test::error_of;
using ilsvrc_test::read_bytes;
using ilsvrc_test::scratch;
using ilsvrc_test::write_bytes;

constexpr uint64_t kSeed = 4;

struct Roots {
  fs::path base, folders, official, kaggle, flat;
};

// Removes the shared scratch tree when the test binary exits.
struct RemoveAtExit {
  fs::path dir;
  ~RemoveAtExit() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// One generated root (5 classes, odd files included) and its three download layouts.
const Roots& roots() {
  static const Roots r = [] {
    Roots out;
    out.base = scratch("layouts");
    out.folders = out.base / "folders";
    imagenet::MakeImagenetOptions o;
    o.out = out.folders;
    o.classes = 5;
    o.per_class = 4;
    o.test_per_class = 3;
    o.size = 40;
    o.seed = kSeed;
    imagenet::make_synthetic_imagenet(o);
    out.official = out.base / "official";
    out.kaggle = out.base / "kaggle";
    out.flat = out.base / "flat";
    write_download_layout(out.folders, out.official, DownloadLayout::Official, kSeed);
    write_download_layout(out.folders, out.kaggle, DownloadLayout::Kaggle, kSeed);
    write_download_layout(out.folders, out.flat, DownloadLayout::Flat, kSeed);
    return out;
  }();
  static const RemoveAtExit cleanup{r.base};
  return r;
}

using Multiset = std::multimap<std::string, int64_t>;  // picture bytes -> label

// Every sample of a folder dataset as (its file's bytes, label), in index order.
std::vector<std::pair<std::string, int64_t>> contents(const DatasetPtr& ds) {
  const auto* f = dynamic_cast<const imagenet::ImageFolderDataset*>(ds.get());
  std::vector<std::pair<std::string, int64_t>> out;
  if (f) {
    for (const auto& s : f->samples()) out.emplace_back(read_bytes(s.path), s.label);
  } else if (const auto* sh = dynamic_cast<const shards::ShardDataset*>(ds.get())) {
    for (int64_t i = 0; i < sh->size(); ++i) out.push_back(sh->raw(i));
  }
  return out;
}

Multiset as_set(const std::vector<std::pair<std::string, int64_t>>& v) { return Multiset(v.begin(), v.end()); }

DatasetPtr open(const fs::path& root, Split split, const std::string& val_labels = "") {
  DataConfig c;
  c.name = "imagenet";
  c.root = root.string();
  c.image_size = 32;
  c.val_labels = val_labels;
  c.shard_order = "global";
  return make_dataset(c, split);
}

TEST(OfficialTars, IndexAndPrepareGiveTheFolderLayoutBack) {
  const auto& r = roots();
  const auto files = find_official(r.official);
  ASSERT_TRUE(files.train_tar && files.val_tar && files.devkit);
  const auto kit = read_devkit(*files.devkit);
  const auto train = index_official_train(*files.train_tar);
  EXPECT_TRUE(train.problems.empty());
  EXPECT_EQ(train.wnids.size(), 5u);
  const auto folders_train = open(r.folders, Split::Train);
  EXPECT_EQ(static_cast<int64_t>(train.samples.size()), folders_train->size());
  const auto val = index_official_val(*files.val_tar, kit);
  EXPECT_EQ(val.samples.size(), 15u);

  const auto prepared = r.base / "prepared";
  const auto report = prepare_imagenet(r.official, prepared);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.kept, 0);
  // Training sees the same samples in the same order; validation the same pictures and labels.
  EXPECT_EQ(contents(open(prepared, Split::Train)), contents(folders_train));
  EXPECT_EQ(as_set(contents(open(prepared, Split::Test))), as_set(contents(open(r.folders, Split::Test))));
  // A rerun resumes (keeps every file); a file changed since is never overwritten.
  EXPECT_EQ(prepare_imagenet(r.official, prepared).kept, folders_train->size() + 15);
  const auto victim = fs::directory_iterator(prepared / "imagenet/val" / kit.wnid(kit.val_ids[0]).value())->path();
  write_bytes(victim, "changed");
  EXPECT_NE(error_of([&] { prepare_imagenet(r.official, prepared); }).find("refusing to overwrite"), std::string::npos);
}

TEST(OfficialTars, MakeShardsStreamsTheTarsResumablyWithTheFoldersLabels) {
  const auto& r = roots();
  for (const auto format : {shards::ShardFormat::TFRecord, shards::ShardFormat::WebDataset}) {
    const auto to = r.base / (format == shards::ShardFormat::TFRecord ? "tfds" : "wds");
    shards::ConvertOptions o{r.official, to, format, 7};
    const auto written = shards::convert_official_to_shards(o);
    ASSERT_EQ(written.size(), 2u);
    // The same samples, labels and order as the folder layout (train) / the same set (val).
    EXPECT_EQ(contents(open(to, Split::Train)), contents(open(r.folders, Split::Train)));
    EXPECT_EQ(as_set(contents(open(to, Split::Test))), as_set(contents(open(r.folders, Split::Test))));
    // Done: a second run refuses to write into it.
    EXPECT_NE(error_of([&] { shards::convert_official_to_shards(o); }).find("not empty"), std::string::npos);
  }
  // Interrupted (a shard and the metadata missing, the marker left): a rerun completes it and
  // keeps the shards that were finished.
  const auto v = r.base / "tfds/imagenet2012/5.1.0";
  const auto first = v / "imagenet2012-train.tfrecord-00000-of-00004";
  const auto last = v / "imagenet2012-train.tfrecord-00003-of-00004";
  ASSERT_TRUE(fs::exists(first) && fs::exists(last));
  const auto stamp = fs::last_write_time(first);
  fs::remove(last);
  fs::remove(v / "dataset_info.json");
  write_bytes(r.base / "tfds/.lth-make-shards", fs::absolute(r.official).lexically_normal().string() + "\n");
  shards::convert_official_to_shards({r.official, r.base / "tfds", shards::ShardFormat::TFRecord, 7});
  EXPECT_TRUE(fs::exists(last));
  EXPECT_EQ(fs::last_write_time(first), stamp);
  EXPECT_EQ(contents(open(r.base / "tfds", Split::Train)), contents(open(r.folders, Split::Train)));
}

TEST(DownloadLayouts, KaggleAndFlatGiveTheSameSamplesAndLabels) {
  const auto& r = roots();
  const auto train = contents(open(r.folders, Split::Train));
  const auto val = contents(open(r.folders, Split::Test));
  EXPECT_EQ(resolve_imagenet_layout(r.kaggle, {}).kind, "Kaggle (ILSVRC/Data/CLS-LOC), flat val + LOC_val_solution.csv");
  EXPECT_EQ(contents(open(r.kaggle, Split::Train)), train);
  EXPECT_EQ(contents(open(r.kaggle, Split::Test)), val);  // flat val sorted as folders: (class, name)
  for (const char* labels : {"val_labels.txt", "val_ids.txt"}) {
    EXPECT_EQ(contents(open(r.flat, Split::Test, (r.flat / labels).string())), val) << labels;
  }
  // Kaggle's CSV given explicitly for a flat folder works too; without a label file, the devkit.
  EXPECT_EQ(contents(open(r.flat, Split::Test, (r.kaggle / "LOC_val_solution.csv").string())), val);
  EXPECT_EQ(contents(open(r.flat, Split::Test)), val);
}

TEST(DownloadLayouts, BadLabelFilesAreOneClearError) {
  const auto& r = roots();
  const auto dir = scratch("badlabels");
  auto lines = read_bytes(r.flat / "val_ids.txt");
  write_bytes(dir / "short.txt", lines.substr(0, lines.find('\n') + 1));
  EXPECT_NE(error_of([&] { open(r.flat, Split::Test, (dir / "short.txt").string()); }).find("1 labels for 15 images"),
            std::string::npos);
  write_bytes(dir / "zero.txt", "0\n" + lines.substr(lines.find('\n') + 1));
  EXPECT_NE(error_of([&] { open(r.flat, Split::Test, (dir / "zero.txt").string()); }).find("ambiguous"),
            std::string::npos);
  // Ids without a devkit to map them.
  fs::create_directories(dir / "root/imagenet");
  fs::copy(r.flat / "imagenet/val", dir / "root/imagenet/val", fs::copy_options::recursive);
  fs::copy_file(r.flat / "val_ids.txt", dir / "root/ids.txt");
  EXPECT_NE(error_of([&] { open(dir / "root", Split::Test, (dir / "root/ids.txt").string()); }).find("need the devkit"),
            std::string::npos);
  // A flat folder without any label source.
  EXPECT_NE(error_of([&] { open(dir / "root", Split::Test); }).find("--val_labels"), std::string::npos);
  fs::remove_all(dir);
}

TEST(DownloadLayouts, TheSuiteFindsReleaseNamesAndKaggleVal) {
  const auto& r = roots();
  eval::SuiteOptions so;
  so.image_size = 32;
  const auto own = eval::discover_test_suite(r.folders, so);
  const auto kaggle = eval::discover_test_suite(r.kaggle, so);
  ASSERT_EQ(own.present.size(), 4u);  // no ImageNet-A class among the first 5
  ASSERT_EQ(kaggle.present.size(), 4u);
  for (size_t i = 0; i < own.present.size(); ++i) {
    EXPECT_EQ(kaggle.present[i].name, own.present[i].name);
    EXPECT_EQ(as_set(contents(kaggle.present[i].dataset)), as_set(contents(own.present[i].dataset))) << own.present[i].name;
    EXPECT_EQ(kaggle.present[i].class_subset, own.present[i].class_subset);
  }
  EXPECT_EQ(kaggle.present[1].path.filename(), "imagenetv2-matched-frequency-format-val");
  EXPECT_EQ(kaggle.present[3].path.filename(), "sketch");
  // Another V2 variant is looked for under its own release name (absent here).
  so.v2_variant = "top-images";
  const auto other = eval::discover_test_suite(r.kaggle, so);
  EXPECT_EQ(other.present.size(), 3u);
  so.v2_variant = "bogus";
  EXPECT_NE(error_of([&] { eval::discover_test_suite(r.kaggle, so); }).find("--v2_variant"), std::string::npos);
}

check::CheckOptions check_options(const fs::path& root) {
  check::CheckOptions o;
  o.data_root = root;
  o.subset = true;
  o.image_size = 32;
  o.sample = 8;
  return o;
}

bool mentions(const std::vector<std::string>& lines, const std::string& what) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(what) != std::string::npos; });
}

TEST(DataCheck, AGoodTreePassesAndTheTableCountsIt) {
  const auto& r = roots();
  auto o = check_options(r.kaggle);
  const auto report = check::check_data(o);
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  ASSERT_GE(report.rows.size(), 6u);
  EXPECT_EQ(report.rows[0].set, "imagenet/train");
  EXPECT_EQ(report.rows[0].images, open(r.folders, Split::Train)->size());
  EXPECT_EQ(report.rows[0].classes, 5);
  EXPECT_EQ(report.rows[1].images, 15);
  EXPECT_GT(report.images_per_second_per_core, 0);
  // The odd files of make-imagenet: the sample misses them, --full lists both unreadable ones.
  o.full = true;
  const auto full = check::check_data(o);
  EXPECT_EQ(full.unreadable.size(), 2u);
  EXPECT_TRUE(mentions(full.unreadable, "_truncated.JPEG"));
  EXPECT_TRUE(mentions(full.unreadable, "_empty.JPEG"));
  // Without --subset, the official counts: 5 classes are not ImageNet-1k.
  o.subset = false;
  o.full = false;
  EXPECT_TRUE(mentions(check::check_data(o).problems, "not the 1000 ImageNet-1k classes"));
  const auto table = check::format_report(full, o);
  EXPECT_NE(table.find("imagenet-sketch"), std::string::npos);
  EXPECT_NE(table.find("images/s per core"), std::string::npos);
}

TEST(DataCheck, TheDevkitOrderMistakeIsCaught) {
  const auto& r = roots();
  const auto dir = scratch("devkit_order");
  // A devkit giving the 5 classes the ids 1..5 in a non-sorted order (the rest follow), and
  // the classic mistake: val images put into class folders by id - 1, a position in the
  // sorted list, instead of through meta.mat.
  const auto& sorted = imagenet::canonical_wnids();
  std::vector<std::string> ids = {"", sorted[2], sorted[0], sorted[4], sorted[1], sorted[3]};
  ids.insert(ids.end(), sorted.begin() + 5, sorted.end());
  std::vector<std::pair<std::string, std::string>> files;  // (file name, true wnid)
  for (const auto& cls : fs::directory_iterator(r.folders / "imagenet/val"))
    for (const auto& f : fs::directory_iterator(cls.path()))
      files.emplace_back(f.path().filename().string(), cls.path().filename().string());
  std::sort(files.begin(), files.end());
  std::vector<int32_t> truth;
  for (const auto& [name, wnid] : files)
    truth.push_back(static_cast<int32_t>(std::find(ids.begin(), ids.end(), wnid) - ids.begin()));
  for (const char* tree : {"good", "mistake"}) {
    const auto root = dir / tree;
    fs::create_directories(root / "imagenet");
    fs::copy(r.folders / "imagenet/train", root / "imagenet/train", fs::copy_options::recursive);
    write_devkit(root / "ILSVRC2012_devkit_t12.tar.gz", ids, truth);
    for (size_t k = 0; k < files.size(); ++k) {
      const auto& [name, wnid] = files[k];
      const std::string folder = std::string(tree) == "good" ? wnid : sorted[static_cast<size_t>(truth[k] - 1)];
      fs::create_directories(root / "imagenet/val" / folder);
      fs::copy_file(r.folders / "imagenet/val" / wnid / name, root / "imagenet/val" / folder / name);
    }
  }
  const auto good = check::check_data(check_options(dir / "good"));
  EXPECT_TRUE(good.problems.empty()) << good.problems.front();
  EXPECT_TRUE(mentions(good.notes, "all 15 validation labels agree with the devkit"));
  const auto bad = check::check_data(check_options(dir / "mistake"));
  EXPECT_TRUE(mentions(bad.problems, "15 of 15 validation labels are in devkit order")) << (bad.problems.empty() ? "" : bad.problems.front());
  fs::remove_all(dir);
}

TEST(DataCheck, MissingClassesAndATruncatedTarAreProblems) {
  const auto& r = roots();
  const auto dir = scratch("broken");
  fs::copy(r.folders, dir / "root", fs::copy_options::recursive);
  // Half-extracted: the last class's train folder is gone, another one nearly empty.
  const auto index = imagenet::ClassIndex::from_train_folder(dir / "root/imagenet/train");
  fs::remove_all(dir / "root/imagenet/train" / index.wnid(4));
  for (const auto& e : fs::directory_iterator(dir / "root/imagenet/train" / index.wnid(3))) {
    if (e.path().filename() != "n01491361_0.JPEG") fs::remove(e.path());
  }
  const auto report = check::check_data(check_options(dir / "root"));
  EXPECT_TRUE(mentions(report.problems, "validation classes have no train folder")) << report.problems.size();
  EXPECT_TRUE(mentions(report.problems, "half-extracted"));
  // A truncated official train tar: one line naming the tar and the offset.
  fs::create_directories(dir / "tars");
  const auto tar = read_bytes(r.official / "ILSVRC2012_img_train.tar");
  write_bytes(dir / "tars/ILSVRC2012_img_train.tar", tar.substr(0, tar.size() * 2 / 3));
  const auto cut = check::check_data(check_options(dir / "tars"));
  EXPECT_TRUE(mentions(cut.problems, "ILSVRC2012_img_train.tar at byte")) << (cut.problems.empty() ? "" : cut.problems[0]);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth::data::ilsvrc
