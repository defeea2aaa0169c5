// ImageNet-R / -A scored as the reference does: logits projected to the fixed 200-class list,
// labels that are positions in it (arrays) or class folders of it (folders).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/npy.h"
#include "data/imagenet/subset_classes.h"
#include "eval/evaluator.h"
#include "eval/suite.h"

namespace img = lth::data::imagenet;
namespace fs = std::filesystem;

namespace {

// A "checkpoint with known logits": reads the class c a picture stands for from its colour
// (red = c / 4, green = 64 * (c % 4) + 32) and scores class 0 (tench, in neither list) at
// 10, class c at 5 and everything else at 0. Unprojected it always answers tench; projected
// to a 200-class list it answers c.
class ColourCodedNetwork : public lth::models::Network {
 public:
  torch::Tensor forward(const torch::Tensor& images) override {
    const auto pixel = images.select(1, 0).select(1, 0).to(torch::kInt64);  // [N, 3]
    const auto cls = pixel.select(1, 0) * 4 + pixel.select(1, 1).div(64, "floor");
    auto logits = torch::zeros({images.size(0), 1000});
    logits.select(1, 0).fill_(10);
    logits.scatter_(1, cls.unsqueeze(1), 5.0);
    return logits;
  }
  lth::models::ParamKind kind_of(const std::string&) const override { return lth::models::ParamKind::Head; }
  const lth::models::ModelConfig& config() const override { return config_; }
  torch::Tensor standardize(const torch::Tensor& images) const override { return images.to(torch::kFloat32); }

 private:
  lth::models::ModelConfig config_;
};

std::array<uint8_t, 3> colour_of(int64_t cls) {
  return {static_cast<uint8_t>(cls / 4), static_cast<uint8_t>(64 * (cls % 4) + 32), 128};
}

torch::Tensor picture(int64_t cls, int side) {
  const auto c = colour_of(cls);
  return torch::tensor({c[0], c[1], c[2]}, torch::kUInt8).reshape({1, 1, 3}).expand({side, side, 3}).contiguous();
}

class SubsetScoring : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lth_test_subset_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Labels (positions in the list) and what the network will answer (positions too).
  const std::vector<int64_t> labels_{0, 5, 17, 199, 42};
  const std::vector<int64_t> answers_{0, 5, 3, 199, 100};

  void write_arrays(img::SubsetList list, const std::string& folder, const std::vector<int64_t>& labels) {
    const auto& classes = img::subset_canonical_classes(list);
    std::vector<torch::Tensor> pictures;
    for (const auto a : answers_) pictures.push_back(picture(classes[static_cast<size_t>(a)], 16));
    fs::create_directories(root_ / folder);
    img::write_npy(root_ / folder / "test_images.npy", torch::stack(pictures));
    img::write_npy(root_ / folder / "test_labels.npy", torch::tensor(labels, torch::kInt64));
  }

  void write_folders(img::SubsetList list, const std::string& folder) {
    const auto& classes = img::subset_canonical_classes(list);
    const auto wnids = img::subset_wnids(list);
    for (size_t i = 0; i < labels_.size(); ++i) {
      const fs::path dir = root_ / folder / wnids[static_cast<size_t>(labels_[i])];
      fs::create_directories(dir);
      const auto pic = picture(classes[static_cast<size_t>(answers_[i])], 20);
      const auto png = img::encode_png(pic.data_ptr<uint8_t>(), 20, 20);
      std::ofstream(dir / ("p" + std::to_string(i) + ".png"), std::ios::binary)
          .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    }
  }

  lth::eval::EvalResult score(const lth::eval::TestSet& set) {
    ColourCodedNetwork net;
    lth::eval::EvalOptions o;
    o.batch_size = 2;
    o.num_workers = 0;
    o.class_subset = set.class_subset;
    return lth::eval::evaluate(net, set.dataset, o);
  }

  fs::path root_;
};

const lth::eval::TestSet& only(const lth::eval::TestSuite& suite) {
  EXPECT_EQ(suite.present.size(), 1u);
  return suite.present.at(0);
}

TEST_F(SubsetScoring, ArraysAndFoldersGiveTheAccuracyComputedByHand) {
  for (const auto& [list, array_name, folder_name] :
       {std::tuple{img::SubsetList::ImageNetR, "ImageNetR_x16", "imagenet-r"},
        std::tuple{img::SubsetList::ImageNetA, "ImageNet-A_x16", "imagenet-a"}}) {
    TearDown();
    SetUp();
    write_arrays(list, array_name, labels_);
    write_folders(list, folder_name);
    lth::eval::SuiteOptions o;
    o.image_size = 16;
    o.only = {array_name};
    const auto arrays = lth::eval::discover_test_suite(root_, o);
    o.only = {folder_name};
    const auto folders = lth::eval::discover_test_suite(root_, o);
    const auto& array_set = only(arrays);
    const auto& folder_set = only(folders);
    EXPECT_EQ(array_set.class_subset.size(), 200u);
    EXPECT_EQ(array_set.class_subset, img::subset_canonical_classes(list));
    EXPECT_EQ(folder_set.class_subset, img::subset_canonical_classes(list));  // 200-way though 4 folders
    // By hand: positions 0, 5, 199 answered right, 17 and 42 wrong: 3 of 5. The answer has
    // logit 5 and the 199 other listed classes 0 (tench's 10 is projected away).
    const double right = -std::log(std::exp(5.0) / (std::exp(5.0) + 199));
    const double wrong = -std::log(1.0 / (std::exp(5.0) + 199));
    for (const auto* set : {&array_set, &folder_set}) {
      const auto r = score(*set);
      EXPECT_EQ(r.count, 5) << set->name;
      EXPECT_DOUBLE_EQ(r.accuracy, 0.6) << set->name;
      EXPECT_NEAR(r.nll, (3 * right + 2 * wrong) / 5, 1e-5) << set->name;
    }
  }
}

TEST_F(SubsetScoring, ArrayLabelsBeyondTheListAreAnErrorNamingTheFile) {
  write_arrays(img::SubsetList::ImageNetR, "ImageNetR_x16", {0, 5, 17, 200, 42});
  try {
    lth::eval::discover_test_suite(root_, {});
    FAIL() << "label 200 accepted";
  } catch (const lth::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("ImageNetR_x16/test_labels.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("200"), std::string::npos) << e.what();
  }
}

TEST_F(SubsetScoring, AFolderOutsideTheListIsAnErrorNamingIt) {
  write_folders(img::SubsetList::ImageNetA, "imagenet-a");
  fs::create_directories(root_ / "imagenet-a" / "n01440764");  // tench: not an ImageNet-A class
  try {
    lth::eval::discover_test_suite(root_, {});
    FAIL() << "tench folder accepted";
  } catch (const lth::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("n01440764"), std::string::npos) << e.what();
  }
}

TEST(SubsetLists, AreTheReferencesTwoHundredClassesInOrder) {
  for (const auto list : {img::SubsetList::ImageNetR, img::SubsetList::ImageNetA}) {
    const auto& classes = img::subset_canonical_classes(list);
    ASSERT_EQ(classes.size(), 200u);
    EXPECT_TRUE(std::is_sorted(classes.begin(), classes.end()));
    EXPECT_EQ(std::adjacent_find(classes.begin(), classes.end()), classes.end());
    EXPECT_GE(classes.front(), 0);
    EXPECT_LT(classes.back(), 1000);
  }
  EXPECT_EQ(img::subset_wnids(img::SubsetList::ImageNetR).front(), "n01443537");  // goldfish
  EXPECT_EQ(img::subset_canonical_classes(img::SubsetList::ImageNetA).front(), 6);  // stingray
  EXPECT_EQ(img::subset_list_for("ImageNet-R_x224"), img::SubsetList::ImageNetR);
  EXPECT_EQ(img::subset_list_for("imagenet_a"), img::SubsetList::ImageNetA);
  EXPECT_FALSE(img::subset_list_for("imagenet-sketch").has_value());
  EXPECT_FALSE(img::subset_list_for("ImageNetReaL_x224").has_value());
}

}  // namespace
