// Test-set discovery under a generated --data_root.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/imagenet/npy.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "eval/suite.h"

using namespace lth::eval;
namespace img = lth::data::imagenet;
namespace fs = std::filesystem;

namespace {

class SuiteRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lth_test_suite_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    img::MakeImagenetOptions o;
    o.out = root_;
    o.classes = 7;
    o.per_class = 2;
    o.test_per_class = 2;
    o.size = 40;
    img::make_synthetic_imagenet(o);
    manifest_ = nlohmann::json::parse(std::ifstream(root_ / "manifest.json"));
  }
  void TearDown() override { fs::remove_all(root_); }

  const TestSet* find(const TestSuite& s, const std::string& name) {
    for (const auto& t : s.present)
      if (t.name == name) return &t;
    return nullptr;
  }

  fs::path root_;
  nlohmann::json manifest_;
};

}  // namespace

TEST_F(SuiteRoot, FindsAllFiveSetsWithTheirClassSubsets) {
  SuiteOptions o;
  o.image_size = 32;
  const auto suite = discover_test_suite(root_, o);
  ASSERT_EQ(suite.present.size(), 5u);
  EXPECT_TRUE(suite.absent.empty());
  EXPECT_EQ(suite.num_classes, 7);
  for (size_t i = 0; i < suite.present.size(); ++i) {
    EXPECT_EQ(suite.present[i].name, standard_test_sets()[i]);
    EXPECT_EQ(suite.present[i].dataset->shape().height, 32);
    EXPECT_EQ(suite.present[i].dataset->num_classes(), 7);
  }
  EXPECT_EQ(find(suite, "imagenet-r")->class_subset,
            manifest_["imagenet_r_labels"].get<std::vector<int64_t>>());
  EXPECT_EQ(find(suite, "imagenet-a")->class_subset,
            manifest_["imagenet_a_labels"].get<std::vector<int64_t>>());
  EXPECT_TRUE(find(suite, "imagenet")->class_subset.empty());
  EXPECT_TRUE(find(suite, "imagenet-v2")->class_subset.empty());
  EXPECT_EQ(find(suite, "imagenet")->dataset->size(), 14);
}

TEST_F(SuiteRoot, ListsAbsentSetsAndReadsArrays) {
  fs::remove_all(root_ / "imagenet-a");
  fs::remove_all(root_ / "imagenet-sketch");
  fs::create_directories(root_ / "imagenet-sketch");  // empty folder counts as absent
  // An ImageNet-R array holds positions in the 200-class list: this 7-class root cannot
  // score it (the list's classes are missing from its index), which is an error naming it.
  const fs::path r_arrays = root_ / "ImageNetR_x32";
  fs::create_directories(r_arrays);
  img::write_npy(r_arrays / "test_images.npy", torch::zeros({3, 32, 32, 3}, torch::kUInt8));
  img::write_npy(r_arrays / "test_labels.npy", torch::tensor({4, 2, 4}, torch::kInt64));
  SuiteOptions o;
  o.image_size = 32;
  EXPECT_THROW(discover_test_suite(root_, o), lth::UserError);
  fs::remove_all(r_arrays);
  // Other arrays are scored over all classes with their stored labels.
  const fs::path arrays = root_ / "ImageNetSketch_x32";
  fs::create_directories(arrays);
  img::write_npy(arrays / "test_images.npy", torch::zeros({3, 32, 32, 3}, torch::kUInt8));
  img::write_npy(arrays / "test_labels.npy", torch::tensor({4, 2, 4}, torch::kInt64));
  const auto suite = discover_test_suite(root_, o);
  ASSERT_EQ(suite.absent.size(), 2u);
  EXPECT_EQ(suite.absent[0].name, "imagenet-a");
  EXPECT_EQ(suite.absent[1].name, "imagenet-sketch");
  const TestSet* sketch = find(suite, "ImageNetSketch_x32");
  ASSERT_NE(sketch, nullptr);
  EXPECT_TRUE(sketch->class_subset.empty());
  EXPECT_EQ(sketch->dataset->size(), 3);
  EXPECT_EQ(sketch->dataset->label(1), 2);

  o.only = {"imagenet-v2"};
  const auto only = discover_test_suite(root_, o);
  ASSERT_EQ(only.present.size(), 1u);
  EXPECT_EQ(only.present[0].name, "imagenet-v2");
  o.only = {"imagenet-a"};
  EXPECT_THROW(discover_test_suite(root_, o), lth::UserError);
  EXPECT_THROW(discover_test_suite(root_ / "missing", SuiteOptions{}), lth::UserError);
}
