#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"
#include "data/holdout.h"
#include "data/loader.h"

namespace lth::data {
namespace {

// Sample i: label (i * 7) % classes (classes interleaved, unevenly sized when n is not a
// multiple), image = [index low byte, index high byte]. Labels may be hidden, as a dataset
// that can only tell them by decoding.
class LabelledIndexDataset : public Dataset {
 public:
  LabelledIndexDataset(int64_t n, int64_t classes, bool labels_known = true)
      : n_(n), classes_(classes), labels_known_(labels_known) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return classes_; }
  ImageShape shape() const override { return {1, 1, 2}; }
  std::optional<Example> get(int64_t i, Rng&) const override {
    auto image = torch::tensor({static_cast<uint8_t>(i & 255), static_cast<uint8_t>(i >> 8)}, torch::kUInt8)
                     .reshape({1, 1, 2});
    return Example{image, label_of(i)};
  }
  std::optional<int64_t> label(int64_t i) const override {
    if (!labels_known_) return std::nullopt;
    return label_of(i);
  }
  std::string describe() const override { return "labelled-index"; }
  int64_t label_of(int64_t i) const { return (i * 7) % classes_; }

 private:
  int64_t n_, classes_;
  bool labels_known_;
};

int64_t id_of(const torch::Tensor& image) {
  const auto bytes = image.reshape({2}).to(torch::kInt64);
  return bytes[0].item<int64_t>() + 256 * bytes[1].item<int64_t>();
}

std::set<int64_t> ids_of(const Batch& b) {
  auto img = b.images.reshape({b.images.size(0), 2}).to(torch::kInt64);
  std::set<int64_t> ids;
  for (int64_t r = 0; r < img.size(0); ++r) ids.insert(img[r][0].item<int64_t>() + 256 * img[r][1].item<int64_t>());
  return ids;
}

TEST(Holdout, ClassBalancedCountsDifferByAtMostOne) {
  const LabelledIndexDataset ds(1000, 10);
  for (const int64_t n : {10, 55, 99, 500}) {
    const auto held = choose_holdout(ds, n, 42);
    ASSERT_EQ(static_cast<int64_t>(held.size()), n);
    EXPECT_TRUE(std::is_sorted(held.begin(), held.end()));
    EXPECT_EQ(std::set<int64_t>(held.begin(), held.end()).size(), held.size());  // no repeats
    std::map<int64_t, int64_t> per_class;
    for (const auto i : held) ++per_class[ds.label_of(i)];
    int64_t low = n, high = 0;
    for (int64_t c = 0; c < 10; ++c) {
      low = std::min(low, per_class[c]);
      high = std::max(high, per_class[c]);
    }
    EXPECT_EQ(low, n / 10) << n;
    EXPECT_LE(high - low, 1) << n;
  }
}

TEST(Holdout, SmallClassesGiveWhatTheyHaveAndTheRestFillsUp) {
  // Classes of 34, 33 and 33 samples: 99 held out takes 33 of each.
  const LabelledIndexDataset ds(100, 3);
  const auto held = choose_holdout(ds, 99, 1);
  ASSERT_EQ(held.size(), 99u);
  std::map<int64_t, int64_t> per_class;
  for (const auto i : held) ++per_class[ds.label_of(i)];
  EXPECT_EQ(per_class, (std::map<int64_t, int64_t>{{0, 33}, {1, 33}, {2, 33}}));
}

TEST(Holdout, DependsOnTheSeedAloneAndVariesWithIt) {
  const LabelledIndexDataset ds(600, 6);
  EXPECT_EQ(choose_holdout(ds, 60, 5), choose_holdout(ds, 60, 5));
  EXPECT_NE(choose_holdout(ds, 60, 5), choose_holdout(ds, 60, 6));
}

TEST(Holdout, UnknownLabelsGiveAUniformDrawOfTheRightSize) {
  const LabelledIndexDataset ds(300, 3, /*labels_known=*/false);
  const auto held = choose_holdout(ds, 40, 9);
  EXPECT_EQ(held.size(), 40u);
  EXPECT_EQ(held, choose_holdout(ds, 40, 9));
}

TEST(Holdout, SizeOutOfRangeIsAUserError) {
  const LabelledIndexDataset ds(50, 5);
  EXPECT_THROW(choose_holdout(ds, 0, 1), UserError);
  EXPECT_THROW(choose_holdout(ds, 50, 1), UserError);
  EXPECT_THROW(choose_holdout(ds, -3, 1), UserError);
}

TEST(Holdout, ComplementIsEverythingElse) {
  EXPECT_EQ(complement({1, 3, 4}, 6), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(complement({}, 2), (std::vector<int64_t>{0, 1}));
}

// The hold-out never reaches a training batch: on every rank, over several epochs, and
// after resuming mid-epoch; and together the ranks train on every other image each epoch.
TEST(Holdout, NeverReachesATrainingBatch) {
  const auto base = std::make_shared<LabelledIndexDataset>(403, 7);
  const auto split = split_holdout(base, base, 61, 77);
  ASSERT_EQ(split.holdout->size(), 61);
  ASSERT_EQ(split.train->size(), 403 - 61);
  EXPECT_TRUE(split.class_balanced);
  std::set<int64_t> held;
  Rng rng(0);
  for (int64_t i = 0; i < split.holdout->size(); ++i) held.insert(id_of(split.holdout->get(i, rng)->image));
  ASSERT_EQ(held.size(), 61u);
  const int world = 3;
  LoaderOptions o;
  o.batch_size = 30;  // 11 global batches an epoch, 12 images dropped
  o.num_workers = 2;
  o.seed = 5;
  for (int rank = 0; rank < world; ++rank) {
    o.rank = rank;
    o.world_size = world;
    Loader first(split.train, o);
    std::map<int64_t, std::set<int64_t>> seen_per_epoch;
    LoaderPosition resume_at;
    for (int k = 0; k < 17; ++k) {  // stop mid-epoch 1
      const auto b = first.next();
      for (const auto id : ids_of(*b)) {
        EXPECT_EQ(held.count(id), 0u) << "held-out sample " << id << " trained on by rank " << rank;
        seen_per_epoch[b->epoch].insert(id);
      }
      resume_at = first.position();
    }
    Loader resumed(split.train, o, resume_at);
    for (int k = 0; k < 30; ++k) {  // into epochs 2 and 3
      const auto b = resumed.next();
      for (const auto id : ids_of(*b)) EXPECT_EQ(held.count(id), 0u) << id;
    }
  }
  // All ranks of one epoch: 330 distinct training images, none held out.
  std::set<int64_t> epoch0;
  for (int rank = 0; rank < world; ++rank) {
    o.rank = rank;
    Loader loader(split.train, o);
    for (int k = 0; k < 11; ++k)
      for (const auto id : ids_of(*loader.next())) epoch0.insert(id);
  }
  EXPECT_EQ(epoch0.size(), 330u);
  for (const auto id : epoch0) EXPECT_EQ(held.count(id), 0u);
}

}  // namespace
}  // namespace lth::data
