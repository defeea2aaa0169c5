#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>

#include "common/error.h"
#include "pruning/strategy.h"

namespace lth::pruning {
namespace {

TensorMap random_weights(uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return {{"a.weight", torch::randn({16, 8, 3, 3}, gen)},
          {"b.weight", torch::randn({32, 16, 1, 1}, gen)},
          {"c.weight", torch::randn({8, 4, 5, 5}, gen)}};
}

MaskSet ones_like(const TensorMap& w) {
  MaskSet m;
  for (const auto& [k, v] : w) m[k] = torch::ones_like(v);
  return m;
}

// The smallest kept |w| is >= the largest pruned |w| among previously unmasked weights.
void expect_top_magnitude(const TensorMap& w, const MaskSet& prev, const MaskSet& next) {
  double min_kept = INFINITY, max_pruned = 0;
  for (const auto& [k, m] : next) {
    auto a = w.at(k).abs();
    auto was = prev.at(k).to(torch::kBool), is = m.to(torch::kBool);
    if (is.any().item<bool>()) min_kept = std::min(min_kept, a.masked_select(is).min().item<double>());
    auto dropped = was & ~is;
    if (dropped.any().item<bool>())
      max_pruned = std::max(max_pruned, a.masked_select(dropped).max().item<double>());
  }
  EXPECT_GE(min_kept, max_pruned);
}

TEST(MagnitudeGlobal, KeepsExactCountsNestedAndTopMagnitudeOverCycles) {
  const auto w0 = random_weights(1);
  MaskSet masks = ones_like(w0);
  int64_t remaining = count_total(masks);
  for (int cycle = 1; cycle <= 6; ++cycle) {
    // Each cycle scores different (retrained) weights; pruned entries are 0 there.
    TensorMap trained = random_weights(100 + cycle);
    for (auto& [k, v] : trained) v.mul_(masks.at(k));
    auto next = prune("magnitude_global", PruneRequest{trained, masks, 0.8});
    const int64_t expected = std::llround(remaining * 0.8);
    EXPECT_EQ(count_kept(next), expected) << "cycle " << cycle;
    for (const auto& [k, m] : next) {
      EXPECT_TRUE((m <= masks.at(k)).all().item<bool>()) << "mask not nested: " << k;
      EXPECT_TRUE(((m == 0) | (m == 1)).all().item<bool>());
    }
    expect_top_magnitude(trained, masks, next);
    masks = next;
    remaining = expected;
  }
}

TEST(MagnitudeGlobal, TiesAreBrokenByPositionDeterministically) {
  TensorMap w{{"x", torch::ones({10})}, {"y", torch::ones({10})}};
  MaskSet prev = ones_like(w);
  auto m = prune("magnitude_global", PruneRequest{w, prev, 0.5});
  EXPECT_EQ(count_kept(m), 10);
  // All tied: the first positions in name order win, i.e. all of "x".
  EXPECT_EQ(m.at("x").sum().item<int64_t>(), 10);
  EXPECT_EQ(m.at("y").sum().item<int64_t>(), 0);
}

TEST(MagnitudeGlobal, IsGlobalNotPerLayer) {
  TensorMap w{{"big", torch::full({10}, 5.0)}, {"small", torch::full({10}, 0.1)}};
  auto m = prune("magnitude_global", PruneRequest{w, ones_like(w), 0.5});
  EXPECT_EQ(m.at("big").sum().item<int64_t>(), 10);
  EXPECT_EQ(m.at("small").sum().item<int64_t>(), 0);
}

TEST(MagnitudeLayerwise, EachLayerKeepsTheSameFraction) {
  const auto w = random_weights(2);
  auto m = prune("magnitude_layerwise", PruneRequest{w, ones_like(w), 0.8});
  for (const auto& [k, v] : m) {
    EXPECT_EQ(v.sum().item<int64_t>(), std::llround(v.numel() * 0.8)) << k;
  }
  for (const auto& [k, v] : m) {  // top-|w| within each layer, not globally
    expect_top_magnitude({{k, w.at(k)}}, {{k, torch::ones_like(v)}}, {{k, v}});
  }
}

TEST(RandomStrategies, ExactCountsAndSeedDeterminism) {
  const auto w = random_weights(3);
  auto a = prune("random_global", PruneRequest{w, ones_like(w), 0.3, 7});
  auto b = prune("random_global", PruneRequest{w, ones_like(w), 0.3, 7});
  auto c = prune("random_global", PruneRequest{w, ones_like(w), 0.3, 8});
  EXPECT_EQ(count_kept(a), std::llround(count_total(a) * 0.3));
  for (const auto& [k, v] : a) EXPECT_TRUE(torch::equal(v, b.at(k)));
  bool differs = false;
  for (const auto& [k, v] : a) differs |= !torch::equal(v, c.at(k));
  EXPECT_TRUE(differs);
  auto l = prune("random_layerwise", PruneRequest{w, ones_like(w), 0.5, 1});
  for (const auto& [k, v] : l) EXPECT_EQ(v.sum().item<int64_t>(), v.numel() / 2);
}

TEST(RandomMasksLike, PreservesPerLayerCounts) {
  const auto w = random_weights(4);
  auto target = prune("magnitude_global", PruneRequest{w, ones_like(w), 0.4});
  auto r = random_masks_like(target, 9);
  for (const auto& [k, v] : target) {
    EXPECT_EQ(r.at(k).sum().item<int64_t>(), v.sum().item<int64_t>()) << k;
  }
  EXPECT_FALSE(torch::equal(r.at("b.weight"), target.at("b.weight")));
}

TEST(Prune, RejectsBadRatiosAndUnknownStrategies) {
  const auto w = random_weights(5);
  EXPECT_THROW(prune("magnitude_global", PruneRequest{w, ones_like(w), 1.5}), UserError);
  EXPECT_THROW(prune("magnitude_global", PruneRequest{w, ones_like(w), 0.0}), UserError);
  EXPECT_THROW(prune("nope", PruneRequest{w, ones_like(w), 0.5}), UserError);
}

}  // namespace
}  // namespace lth::pruning
