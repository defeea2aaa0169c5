#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "data/loader.h"
#include "data/synthetic.h"

namespace lth::data {
namespace {

// Image = [index (low byte), index (high byte), one random byte from the per-sample rng].
// Lets tests see which sample landed where and which random stream it got.
class IndexDataset : public Dataset {
 public:
  explicit IndexDataset(int64_t n, int64_t broken = -1) : n_(n), broken_(broken) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 10; }
  ImageShape shape() const override { return {1, 1, 3}; }
  std::optional<Example> get(int64_t i, Rng& rng) const override {
    if (i == broken_) return std::nullopt;
    auto image = torch::tensor({static_cast<uint8_t>(i & 255), static_cast<uint8_t>(i >> 8),
                                static_cast<uint8_t>(rng.below(256))},
                               torch::kUInt8)
                     .reshape({1, 1, 3});
    return Example{image, i % 10};
  }
  std::string describe() const override { return "index"; }

 private:
  int64_t n_, broken_;
};

std::vector<int64_t> sample_ids(const Batch& b) {
  auto img = b.images.reshape({b.images.size(0), 3}).to(torch::kInt64);
  std::vector<int64_t> ids;
  for (int64_t r = 0; r < img.size(0); ++r)
    ids.push_back(img[r][0].item<int64_t>() + 256 * img[r][1].item<int64_t>());
  return ids;
}

std::vector<Batch> take(Loader& loader, int n) {
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(*loader.next());
  return out;
}

TEST(Loader, BatchesDoNotDependOnWorkerCount) {
  auto ds = std::make_shared<IndexDataset>(100);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 5;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 4}) {
    opt.num_workers = workers;
    Loader loader(ds, opt);
    runs.push_back(take(loader, 14));  // crosses two epoch boundaries (6 batches per epoch)
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_TRUE(torch::equal(runs[0][b].images, runs[r][b].images)) << "batch " << b;
      EXPECT_TRUE(torch::equal(runs[0][b].labels, runs[r][b].labels));
    }
  }
}

TEST(Loader, EachEpochIsAFreshPermutationWithoutRepeats) {
  auto ds = std::make_shared<IndexDataset>(64);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.num_workers = 2;
  Loader loader(ds, opt);
  std::vector<int64_t> epoch0, epoch1;
  for (const auto& b : take(loader, 8)) {
    auto ids = sample_ids(b);
    (b.epoch == 0 ? epoch0 : epoch1).insert((b.epoch == 0 ? epoch0 : epoch1).end(), ids.begin(),
                                            ids.end());
  }
  EXPECT_EQ(std::set<int64_t>(epoch0.begin(), epoch0.end()).size(), 64u);
  EXPECT_EQ(std::set<int64_t>(epoch1.begin(), epoch1.end()).size(), 64u);
  EXPECT_NE(epoch0, epoch1);
}

TEST(Loader, DropsTheLastPartialTrainBatch) {
  auto ds = std::make_shared<IndexDataset>(70);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.num_workers = 1;
  Loader loader(ds, opt);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  for (const auto& b : take(loader, 5)) EXPECT_EQ(b.images.size(0), 16);
}

TEST(Loader, RankShardsAreDisjointAndCompleteInTraining) {
  auto ds = std::make_shared<IndexDataset>(96);
  LoaderOptions opt;
  opt.batch_size = 24;
  opt.seed = 3;
  opt.world_size = 3;
  std::vector<int64_t> all;
  std::vector<std::vector<int64_t>> first_batch(3);
  for (int rank = 0; rank < 3; ++rank) {
    opt.rank = rank;
    Loader loader(ds, opt);
    for (const auto& b : take(loader, 4)) {
      EXPECT_EQ(b.images.size(0), 8);
      auto ids = sample_ids(b);
      all.insert(all.end(), ids.begin(), ids.end());
      if (b.index == 0) first_batch[rank] = ids;
    }
  }
  EXPECT_EQ(all.size(), 96u);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 96u);
  // The three slices of global batch 0 together equal the single-rank batch 0.
  opt.rank = 0;
  opt.world_size = 1;
  Loader single(ds, opt);
  auto whole = sample_ids(*single.next());
  std::vector<int64_t> joined;
  for (const auto& part : first_batch) joined.insert(joined.end(), part.begin(), part.end());
  EXPECT_EQ(joined, whole);
}

TEST(Loader, EvaluationCoversEverySampleOnceAcrossRanks) {
  auto ds = std::make_shared<IndexDataset>(50);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.shuffle = false;
  opt.drop_last = false;
  opt.repeat = false;
  opt.world_size = 2;
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank) {
    opt.rank = rank;
    opt.num_workers = rank * 3;
    Loader loader(ds, opt);
    while (auto b = loader.next()) {
      for (auto id : sample_ids(*b)) seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 50u);
}

TEST(Loader, ResumingFromAPositionContinuesTheSameStream) {
  auto ds = std::make_shared<IndexDataset>(80);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.num_workers = 2;
  opt.seed = 11;
  Loader full(ds, opt);
  auto reference = take(full, 9);
  Loader first(ds, opt);
  take(first, 7);
  const LoaderPosition pos = first.position();
  EXPECT_EQ(pos.epoch, 1);
  EXPECT_EQ(pos.batch, 2);
  Loader resumed(ds, opt, pos);
  auto rest = take(resumed, 2);
  EXPECT_TRUE(torch::equal(rest[0].images, reference[7].images));
  EXPECT_TRUE(torch::equal(rest[1].images, reference[8].images));
}

TEST(Loader, UnreadableSamplesAreSkippedAndCounted) {
  auto ds = std::make_shared<IndexDataset>(32, /*broken=*/5);
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.shuffle = false;
  opt.num_workers = 1;
  Loader loader(ds, opt);
  auto b = *loader.next();
  EXPECT_EQ(b.skipped, 1);
  EXPECT_EQ(b.images.size(0), 31);
  EXPECT_EQ(b.labels.size(0), 31);
}

class ThrowingDataset : public IndexDataset {
 public:
  ThrowingDataset() : IndexDataset(64) {}
  std::optional<Example> get(int64_t i, Rng& rng) const override {
    if (i == 40) throw UserError("sample 40: corrupt");
    return IndexDataset::get(i, rng);
  }
};

TEST(Loader, WorkerErrorsReachTheConsumerAndShutdownDoesNotHang) {
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.shuffle = false;
  opt.num_workers = 3;
  Loader loader(std::make_shared<ThrowingDataset>(), opt);
  EXPECT_THROW(
      {
        for (int i = 0; i < 8; ++i) loader.next();
      },
      UserError);
  // Destroying a loader whose prefetch window is full must return promptly.
  Loader idle(std::make_shared<IndexDataset>(1000), opt);
  idle.next();
}

TEST(Loader, RejectsBatchNotDivisibleByWorldSize) {
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.world_size = 3;
  EXPECT_THROW(Loader(std::make_shared<IndexDataset>(100), opt), UserError);
}

TEST(SyntheticDataset, IsDeterministicAndClassDependent) {
  SyntheticConfig c;
  c.seed = 1;
  SyntheticDataset a(c, Split::Train), b(c, Split::Train);
  Rng unused(0);
  EXPECT_TRUE(torch::equal(a.get(3, unused)->image, b.get(3, unused)->image));
  EXPECT_EQ(a.get(13, unused)->label, 3);
  const auto same_class = (a.get(3, unused)->image.to(torch::kFloat) -
                           a.get(13, unused)->image.to(torch::kFloat)).abs().mean().item<float>();
  const auto other_class = (a.get(3, unused)->image.to(torch::kFloat) -
                            a.get(4, unused)->image.to(torch::kFloat)).abs().mean().item<float>();
  EXPECT_LT(same_class, other_class);
}

}  // namespace
}  // namespace lth::data

namespace lth::data {
namespace {

// A prefetch window spanning many epochs (2 batches per epoch, 4 workers x 8 in flight)
// must still give every epoch its own complete permutation, identical to a serial loader.
TEST(Loader, PrefetchWindowSpanningManyEpochsStaysExact) {
  auto ds = std::make_shared<IndexDataset>(32);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 21;
  opt.prefetch_factor = 8;
  opt.num_workers = 4;
  Loader parallel(ds, opt);
  opt.num_workers = 0;
  Loader serial(ds, opt);
  for (int b = 0; b < 40; ++b) {
    const auto p = *parallel.next(), s = *serial.next();
    ASSERT_TRUE(torch::equal(p.images, s.images)) << "batch " << b;
  }
}

}  // namespace
}  // namespace lth::data
