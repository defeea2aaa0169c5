// Folder layouts on a generated data root: class index, V2 numbering, R/A subsets, odd files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "common/error.h"
#include "data/holdout.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "data/loader.h"
#include "imagenet_test_util.h"

using namespace lth::data::imagenet;
namespace fs = std::filesystem;

namespace {

class GeneratedRoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = lth::imagenet_test::scratch_path("imagenet_root");
    MakeImagenetOptions o;
    o.out = root_;
    o.classes = 7;  // ImageNet-R classes 1, 2, 4, 6 and ImageNet-A class 6 among them
    o.per_class = 3;
    o.test_per_class = 2;
    o.size = 48;
    o.seed = 11;
    report_ = make_synthetic_imagenet(o);
    std::ifstream in(root_ / "manifest.json");
    manifest_ = nlohmann::json::parse(in);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static FolderOptions eval_options(bool strict = false) {
    FolderOptions o;
    o.size = 32;
    o.strict = strict;
    return o;
  }

  static fs::path root_;
  static MakeImagenetReport report_;
  static nlohmann::json manifest_;
};

fs::path GeneratedRoot::root_;
MakeImagenetReport GeneratedRoot::report_;
nlohmann::json GeneratedRoot::manifest_;

}  // namespace

TEST(ClassIndex, CanonicalListIsTheImagenet1kOrder) {
  const auto& w = canonical_wnids();
  ASSERT_EQ(w.size(), 1000u);
  EXPECT_EQ(w.front(), "n01440764");
  EXPECT_EQ(w.back(), "n15075141");
  EXPECT_EQ(std::set<std::string>(w.begin(), w.end()).size(), 1000u);
  EXPECT_TRUE(std::is_sorted(w.begin(), w.end()));
  for (const auto& id : w) EXPECT_TRUE(is_wnid(id)) << id;
  EXPECT_EQ(*ClassIndex::canonical().find("n01443537"), 1);  // goldfish
  EXPECT_FALSE(ClassIndex::canonical().find("n99999999").has_value());
}

TEST_F(GeneratedRoot, IndexIsDerivedFromTrainAndMatchesTheCanonicalPrefix) {
  const auto index = ClassIndex::for_data_root(root_);
  ASSERT_EQ(index.size(), 7);
  EXPECT_FALSE(index.is_canonical());
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(index.wnid(i), canonical_wnids()[size_t(i)]);
  EXPECT_TRUE(ClassIndex::for_data_root(root_ / "nowhere").is_canonical());
}

TEST_F(GeneratedRoot, LayoutCountsAreAsRequested) {
  EXPECT_EQ(report_.images.at("imagenet/train"), 7 * 3 + 5);  // + 5 odd files
  EXPECT_EQ(report_.images.at("imagenet/val"), 7 * 2);
  EXPECT_EQ(report_.images.at("imagenet-v2"), 7 * 2);
  EXPECT_EQ(report_.images.at("imagenet-sketch"), 7 * 2);
  EXPECT_EQ(report_.images.at("imagenet-r"), 4 * 2);  // classes 1, 2, 4, 6 (the fixed R list)
  EXPECT_EQ(report_.images.at("imagenet-a"), 1 * 2);  // class 6 (the fixed A list)
}

TEST_F(GeneratedRoot, V2NumericFoldersMapToTheirClasses) {
  const auto index = ClassIndex::for_data_root(root_);
  const auto v2 =
      open_numeric_dataset("imagenet-v2", root_ / "imagenet-v2", index.size(), eval_options());
  ASSERT_EQ(v2->size(), 14);
  std::set<int64_t> labels;
  for (const auto& s : v2->samples()) {
    EXPECT_EQ(s.label, std::stoll(s.path.parent_path().filename().string()));
    labels.insert(s.label);
  }
  EXPECT_EQ(labels, (std::set<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  // Numeric order, not string order, and folders beyond the label space are skipped.
  fs::create_directories(root_ / "v2_extra" / "10");
  fs::create_directories(root_ / "v2_extra" / "2");
  fs::copy_file(v2->samples()[0].path, root_ / "v2_extra" / "10" / "a.jpeg");
  fs::copy_file(v2->samples()[0].path, root_ / "v2_extra" / "2" / "a.jpeg");
  const auto few = list_numeric_folders(root_ / "v2_extra", 6);
  ASSERT_EQ(few.size(), 1u);
  EXPECT_EQ(few[0].label, 2);
  const auto many = list_numeric_folders(root_ / "v2_extra", 1000);
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(many[0].label, 2);
  EXPECT_EQ(many[1].label, 10);
}

TEST_F(GeneratedRoot, RenditionAndAdversarialSubsetsAreTheFixedListsWithinTheIndex) {
  const auto root_index = ClassIndex::for_data_root(root_);
  for (const auto& index : {root_index, ClassIndex::canonical()}) {
    const auto r = open_wnid_subset_dataset("imagenet-r", root_ / "imagenet-r", index,
                                            SubsetList::ImageNetR, eval_options());
    const auto a = open_wnid_subset_dataset("imagenet-a", root_ / "imagenet-a", index,
                                            SubsetList::ImageNetA, eval_options());
    if (index.size() == 7) {  // the generated root's 7 classes: the lists' classes among them
      EXPECT_EQ(r->class_subset(), manifest_["imagenet_r_labels"].get<std::vector<int64_t>>());
      EXPECT_EQ(a->class_subset(), manifest_["imagenet_a_labels"].get<std::vector<int64_t>>());
      EXPECT_EQ(r->class_subset(), (std::vector<int64_t>{1, 2, 4, 6}));
    } else {  // the canonical index: always the whole 200-class list, folders or not
      EXPECT_EQ(r->class_subset(), subset_canonical_classes(SubsetList::ImageNetR));
      EXPECT_EQ(a->class_subset(), subset_canonical_classes(SubsetList::ImageNetA));
    }
    EXPECT_EQ(a->num_classes(), index.size());  // labels stay in the full label space
    for (const auto& s : r->samples()) {
      EXPECT_EQ(index.wnid(s.label), s.path.parent_path().filename().string());
    }
  }
  const auto val = open_wnid_dataset("imagenet", root_ / "imagenet" / "val",
                                     ClassIndex::for_data_root(root_), eval_options());
  EXPECT_TRUE(val->class_subset().empty());
}

TEST_F(GeneratedRoot, OddFilesAreDecodedOrSkippedAsSpecified) {
  const auto index = ClassIndex::for_data_root(root_);
  const auto train =
      open_wnid_dataset("imagenet/train", root_ / "imagenet" / "train", index, eval_options());
  ASSERT_EQ(train->size(), 26);  // 7 x 3 + 5 odd files
  std::map<std::string, int64_t> position;
  for (int64_t i = 0; i < train->size(); ++i)
    position[train->samples()[size_t(i)].path.filename().string()] = i;
  const std::string w0 = index.wnid(0);
  lth::Rng rng(0);
  for (const char* kind : {"_gray", "_cmyk", "_png"}) {
    const auto ex = train->get(position.at(w0 + kind + ".JPEG"), rng);
    ASSERT_TRUE(ex.has_value()) << kind;
    EXPECT_EQ(ex->label, 0);
    EXPECT_EQ(ex->image.sizes(), (std::vector<int64_t>{32, 32, 3}));
    EXPECT_EQ(ex->image.scalar_type(), torch::kUInt8);
  }
  // The grayscale file really is grey after conversion; the CMYK one really is coloured.
  const auto gray = train->get(position.at(w0 + "_gray.JPEG"), rng)->image.to(torch::kInt);
  EXPECT_TRUE(torch::equal(gray.select(2, 0), gray.select(2, 1)));
  const auto cmyk = train->get(position.at(w0 + "_cmyk.JPEG"), rng)->image.to(torch::kInt);
  const auto png = train->get(position.at(w0 + "_png.JPEG"), rng)->image.to(torch::kInt);
  // Same picture; the YCCK JPEG subsamples chroma of a noisy image, the PNG is exact.
  EXPECT_LT((cmyk - png).abs().to(torch::kFloat).mean().item<float>(), 12.0f);
  EXPECT_EQ(train->unreadable(), 0);
  EXPECT_FALSE(train->get(position.at(w0 + "_truncated.JPEG"), rng).has_value());
  EXPECT_FALSE(train->get(position.at(w0 + "_empty.JPEG"), rng).has_value());
  EXPECT_EQ(train->unreadable(), 2);

  const auto strict =
      open_wnid_dataset("imagenet/train", root_ / "imagenet" / "train", index, eval_options(true));
  try {
    strict->get(position.at(w0 + "_truncated.JPEG"), rng);
    FAIL() << "strict mode must throw";
  } catch (const lth::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("_truncated.JPEG"), std::string::npos) << e.what();
  }
  EXPECT_THROW(strict->get(position.at(w0 + "_empty.JPEG"), rng), lth::UserError);
}

TEST_F(GeneratedRoot, EveryRegularSampleDecodes) {
  const auto index = ClassIndex::for_data_root(root_);
  for (const char* layout : {"imagenet-sketch", "imagenet-r", "imagenet-a"}) {
    const auto ds = open_wnid_dataset(layout, root_ / layout, index, eval_options(true));
    lth::Rng rng(0);
    for (int64_t i = 0; i < ds->size(); ++i) EXPECT_TRUE(ds->get(i, rng).has_value());
  }
}

TEST(Generator, OutputDependsOnlyOnTheOptions) {
  auto make = [](const fs::path& out, uint64_t seed) {
    MakeImagenetOptions o;
    o.out = out;
    o.classes = 2;
    o.per_class = 2;
    o.size = 40;
    o.seed = seed;
    o.odd_files = false;
    make_synthetic_imagenet(o);
  };
  const fs::path a = lth::imagenet_test::scratch_path("gen_a"),
                 b = lth::imagenet_test::scratch_path("gen_b"),
                 c = lth::imagenet_test::scratch_path("gen_c");
  make(a, 1);
  make(b, 1);
  make(c, 2);
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  };
  int files = 0, differ = 0;
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (!e.is_regular_file()) continue;
    const auto rel = fs::relative(e.path(), a);
    EXPECT_EQ(bytes(e.path()), bytes(b / rel)) << rel;
    ++files;
    if (rel.extension() != ".json" && fs::exists(c / rel))
      differ += bytes(e.path()) != bytes(c / rel);
  }
  EXPECT_GT(files, 10);
  EXPECT_GT(differ, 0);
  EXPECT_THROW(make(a, 1), lth::UserError);  // refuses a non-empty folder
  for (const auto& p : {a, b, c}) fs::remove_all(p);
}

TEST_F(GeneratedRoot, LoaderCountsUnreadableSamplesAsSkipped) {
  const auto index = ClassIndex::for_data_root(root_);
  FolderOptions o = eval_options();
  o.train = true;
  const auto train = open_wnid_dataset("imagenet/train", root_ / "imagenet" / "train", index, o);
  lth::data::LoaderOptions lo;
  lo.batch_size = train->size();
  lo.num_workers = 2;
  lo.shuffle = true;
  lo.drop_last = false;
  lo.repeat = false;
  lth::data::Loader loader(train, lo);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->skipped, 2);  // the truncated and the empty file
  EXPECT_EQ(batch->images.size(0), train->size() - 2);
  EXPECT_EQ(batch->images.sizes(), (std::vector<int64_t>{train->size() - 2, 32, 32, 3}));
  EXPECT_FALSE(loader.next().has_value());
}

// The loader has each sample decoded straight into its batch row (get_into); the rows must
// be exactly what get() returns for the same key, unreadable files left out in order.
void expect_rows_are_the_samples(const lth::data::DatasetPtr& dataset) {
  lth::data::LoaderOptions lo;
  lo.batch_size = dataset->size();
  lo.num_workers = 0;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.repeat = false;
  lo.seed = 4;
  lth::data::Loader loader(dataset, lo);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  int64_t row = 0, nonblank = 0;
  for (int64_t i = 0; i < dataset->size(); ++i) {
    lth::Rng rng = lth::Rng::keyed(lo.seed, "sample", 0, uint64_t(i));
    const auto example = dataset->get(i, rng);
    if (!example) continue;
    ASSERT_LT(row, batch->images.size(0));
    EXPECT_TRUE(torch::equal(batch->images[row], example->image)) << "sample " << i;
    EXPECT_EQ(batch->labels[row].item<int64_t>(), example->label);
    nonblank += example->image.sum().item<int64_t>() > 0;
    ++row;
  }
  EXPECT_EQ(row, batch->images.size(0));
  EXPECT_GT(nonblank, 0);  // real pictures, not empty rows
}

TEST_F(GeneratedRoot, LoaderBatchRowsAreTheDatasetsSamples) {
  const auto index = ClassIndex::for_data_root(root_);
  FolderOptions o = eval_options();
  o.train = true;
  const auto train = open_wnid_dataset("imagenet/train", root_ / "imagenet" / "train", index, o);
  expect_rows_are_the_samples(train);
  // Through a hold-out view (SubsetDataset forwards get_into): every other image, reversed.
  std::vector<int64_t> picked;
  for (int64_t i = train->size() - 1; i >= 0; i -= 2) picked.push_back(i);
  expect_rows_are_the_samples(std::make_shared<lth::data::SubsetDataset>(train, picked, "view"));
}
