// Datasets over TFDS TFRecord and WebDataset shards: the same batches as folders for the
// same images and seed, disjoint and complete rank shards, exact mid-epoch resume, damaged
// records skipped or strict, empty shards, TFDS label conventions, and TFRecords written and
// read by an independent implementation (tests/data_shards/tf_records.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>
#include <set>

#include "common/error.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "data/loader.h"
#include "data/registry.h"
#include "data/shards/convert.h"
#include "data/shards/imagenet_shards.h"
#include "data/shards/shard_dataset.h"
#include "data/shards/stream_order.h"
#include "data/shards/tfds.h"
#include "data/shards/tar.h"
#include "data/shards/tfrecord.h"
#include "test_util.h"

namespace lth::data::shards {
namespace {

namespace fs = std::filesystem;
using shard_test::read_bytes;
using shard_test::scratch;
using shard_test::write_bytes;

// One generated folder root, converted to both shard formats, shared by the tests here.
struct Roots {
  fs::path base, folders, tfds, wds;
};

const Roots& roots() {
  static const Roots r = [] {
    Roots out;
    out.base = scratch("roots");
    out.folders = out.base / "folders";
    out.tfds = out.base / "tfds";
    out.wds = out.base / "wds";
    imagenet::MakeImagenetOptions o;
    o.out = out.folders;
    o.classes = 4;
    o.per_class = 7;
    o.test_per_class = 3;
    o.size = 40;
    o.seed = 9;
    imagenet::make_synthetic_imagenet(o);
    convert_folders_to_shards({out.folders, out.tfds, ShardFormat::TFRecord, 4});
    convert_folders_to_shards({out.folders, out.wds, ShardFormat::WebDataset, 5});
    return out;
  }();
  return r;
}

DatasetPtr open(const fs::path& root, Split split, const std::string& order = "global", bool strict = false) {
  DataConfig c;
  c.name = "imagenet";
  c.root = root.string();
  c.image_size = 24;
  c.shard_order = order;
  c.shuffle_buffer = 6;
  c.strict = strict;
  return make_dataset(c, split);
}

std::vector<Batch> batches(DatasetPtr ds, LoaderOptions o, int n, LoaderPosition start = {}) {
  Loader loader(std::move(ds), o, start);
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(*loader.next());
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].epoch, b[i].epoch) << what << " batch " << i;
    EXPECT_EQ(a[i].index, b[i].index) << what << " batch " << i;
    EXPECT_EQ(a[i].skipped, b[i].skipped) << what << " batch " << i;
    EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels)) << what << " batch " << i;
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << what << " batch " << i;
  }
}

TEST(ShardDatasets, SameImagesGiveTheSameBatchesAsFolders) {
  const auto& r = roots();
  LoaderOptions o;
  o.batch_size = 6;
  o.seed = 21;
  o.num_workers = 0;
  for (const auto split : {Split::Train, Split::Test}) {
    o.shuffle = o.drop_last = split == Split::Train;
    const auto folder = open(r.folders, split), tfds = open(r.tfds, split), wds = open(r.wds, split);
    ASSERT_EQ(tfds->size(), folder->size());
    ASSERT_EQ(wds->size(), folder->size());
    EXPECT_EQ(tfds->num_classes(), folder->num_classes());
    const int n = split == Split::Train ? 9 : 2;  // train: into the second epoch
    const auto expected = batches(folder, o, n);
    expect_same(batches(tfds, o, n), expected, "tfrecord");
    expect_same(batches(wds, o, n), expected, "webdataset");
  }
}

TEST(ShardDatasets, TheTfdsLayoutIsWhatTfdsWrites) {
  const auto& r = roots();
  const auto b = read_tfds_builder(*find_tfds_version(r.tfds, "imagenet2012"));
  EXPECT_EQ(b.version, "5.1.0");
  ASSERT_NE(b.split("train"), nullptr);
  const auto folder = open(r.folders, Split::Train);
  const auto shards = (folder->size() + 3) / 4;
  EXPECT_EQ(b.split("train")->files.front().filename(),
            "imagenet2012-train.tfrecord-00000-of-0000" + std::to_string(shards));
  EXPECT_EQ(b.split("train")->shard_lengths.back(), folder->size() - 4 * (shards - 1));
  EXPECT_EQ(b.num_classes, 4);
  EXPECT_EQ(b.label_names.front(), "n01440764");
  // The independent reader checks every CRC and parses every Example.
  const auto py = shard_test::python_tool("read-examples " + b.split("train")->files.front().string());
  ASSERT_EQ(py.status, 0) << py.output;
  const auto records = nlohmann::json::parse(py.output);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0]["label"], 0);
  const auto first = r.folders / "imagenet/train/n01440764" / records[0]["file_name"].get<std::string>();
  EXPECT_EQ(records[0]["image_len"].get<size_t>(), read_bytes(first).size());
}

TEST(ShardDatasets, ReadsTFRecordsWrittenByAnIndependentWriter) {
  const auto dir = scratch("pywrite");
  const auto& r = roots();
  const auto folder = std::dynamic_pointer_cast<const ShardDataset>(open(r.tfds, Split::Test));
  ASSERT_TRUE(folder);
  nlohmann::json manifest = nlohmann::json::array();
  const auto val = r.folders / "imagenet/val";
  std::vector<std::pair<fs::path, int64_t>> files;
  int64_t label = 0;
  for (const auto& cls : {"n01440764", "n01443537"}) {
    for (const auto& e : fs::directory_iterator(val / cls)) files.emplace_back(e.path(), label);
    ++label;
  }
  for (const auto& [path, l] : files) {
    manifest.push_back({{"image", path.string()}, {"label", l}, {"file_name", path.filename().string()}});
  }
  write_bytes(dir / "manifest.json", manifest.dump());
  const auto py = shard_test::python_tool("write-examples " + (dir / "py.tfrecord").string() + " " +
                                          (dir / "manifest.json").string());
  ASSERT_EQ(py.status, 0) << py.output;
  ShardReadOptions o;
  o.size = 24;
  o.num_classes = 4;
  const ShardDataset ds("py", index_tfrecord_files({dir / "py.tfrecord"}, true), o);
  ASSERT_EQ(ds.size(), static_cast<int64_t>(files.size()));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto [image, l] = ds.raw(i);
    EXPECT_EQ(image, read_bytes(files[static_cast<size_t>(i)].first));
    EXPECT_EQ(l, files[static_cast<size_t>(i)].second);
    Rng rng(1);
    EXPECT_TRUE(ds.get(i, rng).has_value());
  }
  // A flipped byte in the Python-written file: both readers see the bad CRC.
  auto bytes = read_bytes(dir / "py.tfrecord");
  bytes[bytes.size() - 100] ^= 0x01;  // inside the last record's picture
  write_bytes(dir / "bad.tfrecord", bytes);
  const auto py_bad = shard_test::python_tool("read-examples " + (dir / "bad.tfrecord").string());
  EXPECT_NE(py_bad.status, 0);
  EXPECT_NE(py_bad.output.find("bad data crc"), std::string::npos) << py_bad.output;
  const ShardDataset bad("bad", index_tfrecord_files({dir / "bad.tfrecord"}, true), o);
  Rng rng(1);
  EXPECT_FALSE(bad.get(bad.size() - 1, rng).has_value());
  EXPECT_EQ(bad.unreadable(), 1);
  EXPECT_TRUE(bad.get(0, rng).has_value());
  fs::remove_all(dir);
}

TEST(StreamOrder, RankShardsAreDisjointAndComplete) {
  for (const auto& sizes : std::vector<std::vector<int64_t>>{{5, 3, 0, 7, 2}, {4, 3}, {9}, {0, 0, 6}}) {
    const ShardLayout layout{sizes, 4};
    const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
    for (int world = 1; world <= 4; ++world) {
      for (int64_t epoch = 0; epoch < 3; ++epoch) {
        std::multiset<int64_t> all;
        for (int rank = 0; rank < world; ++rank) {
          const auto order = rank_order(layout, 5, epoch, rank, world, true);
          EXPECT_EQ(static_cast<int64_t>(order.size()), rank_sample_count(layout, rank, world));
          all.insert(order.begin(), order.end());
          // Deterministic in (seed, epoch, rank); another epoch reshuffles.
          EXPECT_EQ(order, rank_order(layout, 5, epoch, rank, world, true));
        }
        EXPECT_EQ(static_cast<int64_t>(all.size()), total);
        for (int64_t i = 0; i < total; ++i) EXPECT_EQ(all.count(i), 1u) << "world " << world;
      }
    }
  }
  // Whole files per rank when there are enough files: rank 1 of 2 reads files 1 and 3 only.
  const ShardLayout layout{{2, 2, 2, 2}, 1};
  const auto order = rank_order(layout, 0, 0, 1, 2, false);
  EXPECT_EQ(order, (std::vector<int64_t>{2, 3, 6, 7}));
  const ShardLayout many{std::vector<int64_t>(16, 3), 4};
  EXPECT_NE(rank_order(many, 0, 0, 1, 2, true), rank_order(many, 0, 1, 1, 2, true));
}

TEST(StreamOrder, LoaderRanksAreDisjointAndResumeIsExact) {
  const auto& r = roots();
  for (const auto& root : {r.tfds, r.wds}) {
    const auto ds = open(root, Split::Train, "stream");
    LoaderOptions o;
    o.batch_size = 4;
    o.seed = 3;
    o.num_workers = 2;
    o.world_size = 2;
    Loader probe(ds, o);
    const int64_t per_epoch = probe.batches_per_epoch();
    ASSERT_GT(per_epoch, 0);
    for (int rank = 0; rank < 2; ++rank) {
      o.rank = rank;
      const auto all = batches(ds, o, static_cast<int>(per_epoch) + 3);
      // Resuming at batch 2 (or in the next epoch) continues exactly.
      for (int64_t at : {int64_t{2}, per_epoch + 1}) {
        const LoaderPosition pos{at / per_epoch, at % per_epoch};
        const auto resumed = batches(ds, o, static_cast<int>(per_epoch + 3 - at), pos);
        expect_same(resumed, std::vector<Batch>(all.begin() + at, all.end()), "resume " + root.string());
      }
    }
    // Disjointness by index, through the order itself.
    const auto layout = std::dynamic_pointer_cast<const ShardOrdered>(ds)->shard_layout();
    auto a = rank_order(layout, 3, 0, 0, 2, true), b = rank_order(layout, 3, 0, 1, 2, true);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<int64_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    EXPECT_TRUE(both.empty());
    EXPECT_EQ(static_cast<int64_t>(a.size() + b.size()), ds->size());
  }
}

fs::path last_train_shard(const fs::path& tfds) {
  return read_tfds_builder(*find_tfds_version(tfds, "imagenet2012")).split("train")->files.back();
}

fs::path copy_tfds(const std::string& name) {
  const auto dir = scratch(name);
  fs::copy(roots().tfds, dir / "tfds", fs::copy_options::recursive);
  return dir;
}

TEST(DamagedShards, BadCrcIsSkippedOrStrict) {
  const auto dir = copy_tfds("badcrc");
  const auto shard = last_train_shard(dir / "tfds");
  auto bytes = read_bytes(shard);
  bytes[40] ^= 0x10;  // inside the first record's data
  write_bytes(shard, bytes);
  const auto ds = std::dynamic_pointer_cast<const ShardDataset>(open(dir / "tfds", Split::Train));
  const auto folder = open(roots().folders, Split::Train);
  ASSERT_EQ(ds->size(), folder->size());
  const int64_t bad = ds->size() - static_cast<int64_t>(ds->index().records_per_file.back());
  Rng rng(1);
  EXPECT_FALSE(ds->get(bad, rng).has_value());
  EXPECT_EQ(ds->unreadable(), 1);
  const auto strict = open(dir / "tfds", Split::Train, "global", /*strict=*/true);
  try {
    strict->get(bad, rng);
    FAIL() << "strict mode did not throw";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(shard.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(DamagedShards, TruncatedAndEmptyShards) {
  const auto dir = copy_tfds("truncated");
  const auto v = dir / "tfds/imagenet2012/5.1.0";
  const auto last = last_train_shard(dir / "tfds");
  const auto bytes = read_bytes(last);
  write_bytes(last, bytes.substr(0, bytes.size() - 10));  // the last record loses its tail
  const auto full = open(roots().tfds, Split::Train);
  const auto ds = open(dir / "tfds", Split::Train);
  EXPECT_EQ(ds->size(), full->size() - 1);
  try {
    open(dir / "tfds", Split::Train, "global", /*strict=*/true);
    FAIL() << "strict mode accepted a truncated shard";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(last.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  // Empty shards (0 bytes) hold no samples and break nothing, in either order.
  const auto files = read_tfds_builder(v).split("train")->files;
  write_bytes(files[3], "");
  const auto with_empty = open(dir / "tfds", Split::Train, "stream");
  EXPECT_EQ(with_empty->size(), full->size() - 1 - 4);
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 0;
  o.world_size = 2;
  o.rank = 1;
  EXPECT_EQ(batches(with_empty, o, 3).size(), 3u);
  // Older TFDS metadata ("numShards", no shardLengths): counts come from the files.
  {
    auto info = nlohmann::json::parse(read_bytes(v / "dataset_info.json"));
    for (auto& split : info["splits"]) {
      split["numShards"] = std::to_string(split["shardLengths"].size());
      split.erase("shardLengths");
    }
    write_bytes(v / "dataset_info.json", info.dump());
    EXPECT_EQ(open(dir / "tfds", Split::Train)->size(), full->size() - 1 - 4);
    // Neither numShards nor shardLengths (hand-made infos): the files the template names,
    // records counted -- not an empty split.
    for (auto& split : info["splits"]) split.erase("numShards");
    write_bytes(v / "dataset_info.json", info.dump());
    EXPECT_EQ(read_tfds_builder(v).split("train")->files, files);
    EXPECT_TRUE(read_tfds_builder(v).split("train")->counts_from_files);
    EXPECT_EQ(open(dir / "tfds", Split::Train)->size(), full->size() - 1 - 4);
    // A stray shard of another count is refused, naming both files.
    write_bytes(v / "imagenet2012-train.tfrecord-00000-of-00099", "");
    try {
      read_tfds_builder(v);
      FAIL();
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("disagree on the number of shards"), std::string::npos) << e.what();
    }
    fs::remove(v / "imagenet2012-train.tfrecord-00000-of-00099");
  }
  // A missing shard listed in dataset_info.json is a clear error.
  fs::remove(files[2]);
  try {
    open(dir / "tfds", Split::Train);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(DamagedShards, WebDatasetKeysWithoutLabelAreSkipped) {
  const auto dir = scratch("wdsbad");
  const auto jpeg = read_bytes(roots().folders / "imagenet/val/n01440764" /
                               fs::directory_iterator(roots().folders / "imagenet/val/n01440764")->path().filename());
  {
    TarWriter w(dir / "x.tar");
    w.add("a.jpg", jpeg);
    w.add("a.cls", "1");
    w.add("b.jpg", jpeg);  // no .cls
    w.add("c.cls", "2");   // no image
    w.add("d.JPEG", jpeg);
    w.add("d.cls", " 3\n");
    w.add("e.jpg", jpeg);
    w.add("e.cls", "x");   // not a number: unreadable when read
    w.add("f.jpg", jpeg);
    w.add("f.cls", std::string(100, '1'));  // absurdly long: refused before reading
    w.close();
  }
  const auto index = index_webdataset_files({dir / "x.tar"}, false);
  ASSERT_EQ(index.samples.size(), 4u);
  EXPECT_THROW(index_webdataset_files({dir / "x.tar"}, true), UserError);
  ShardReadOptions o;
  o.size = 16;
  o.num_classes = 4;
  const ShardDataset ds("x", index, o);
  Rng rng(0);
  EXPECT_EQ(ds.get(0, rng)->label, 1);
  EXPECT_EQ(ds.get(1, rng)->label, 3);
  EXPECT_FALSE(ds.get(2, rng).has_value());
  EXPECT_FALSE(ds.get(3, rng).has_value());
  EXPECT_EQ(ds.unreadable(), 2);
  fs::remove_all(dir);
}

TEST(TfdsTestSets, LabelConventions) {
  const auto& r = roots();
  const auto index = class_index_for_root(r.tfds.string());
  EXPECT_EQ(index.size(), 4);
  // imagenet_r stores 0..K-1 positions in its own label list; they map to ImageNet labels.
  const auto rset = find_shard_test_set(r.tfds.string(), "imagenet-r", index, 24, false);
  ASSERT_TRUE(rset);
  std::vector<int64_t> present;
  const auto folder_r = imagenet::list_wnid_folders(r.folders / "imagenet-r",
                                                    imagenet::ClassIndex::for_data_root(r.folders), &present);
  EXPECT_EQ(rset->dataset->class_subset(), present);
  ASSERT_EQ(rset->dataset->size(), static_cast<int64_t>(folder_r.size()));
  const auto shards = std::dynamic_pointer_cast<const ShardDataset>(rset->dataset);
  for (int64_t i = 0; i < shards->size(); ++i) {
    EXPECT_EQ(shards->raw(i).second, folder_r[static_cast<size_t>(i)].label);
  }
  for (const char* set : {"imagenet", "imagenet-v2", "imagenet-sketch"}) {
    EXPECT_TRUE(find_shard_test_set(r.tfds.string(), set, index, 24, false)) << set;
  }
  EXPECT_FALSE(find_shard_test_set(r.tfds.string(), "imagenet-a", index, 24, false));  // 4 classes: no A
  // V2: only the chosen variant's config (matched-frequency is the one written).
  EXPECT_FALSE(find_shard_test_set(r.tfds.string(), "imagenet-v2", index, 24, false, "top-images"));
  EXPECT_TRUE(find_shard_test_set(r.tfds.string(), "imagenet-v2", index, 24, false, "matched-frequency"));
  EXPECT_TRUE(find_shard_test_set(r.wds.string(), "imagenet", index, 24, false));
}

}  // namespace
}  // namespace lth::data::shards
