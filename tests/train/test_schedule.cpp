#include <gtest/gtest.h>

#include <cmath>

#include "train/schedule.h"

namespace lth::train {
namespace {

TEST(Schedule, WarmupCosineAtItsBoundaries) {
  ScheduleConfig c{0.8, 48000, false, 0.1};
  const int64_t warmup = 4800;
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 0.0);  // optax: the first update has lr 0
  EXPECT_DOUBLE_EQ(learning_rate(c, 1), 0.8 / warmup);
  EXPECT_DOUBLE_EQ(learning_rate(c, warmup - 1), 0.8 * (warmup - 1) / warmup);
  EXPECT_DOUBLE_EQ(learning_rate(c, warmup), 0.8);  // peak, start of the cosine
  EXPECT_NEAR(learning_rate(c, warmup + 21600), 0.4, 1e-12);  // half-way through the decay
  EXPECT_NEAR(learning_rate(c, 47999), 0.8 * 0.5 * (1 + std::cos(M_PI * 43199.0 / 43200.0)), 1e-15);
  EXPECT_DOUBLE_EQ(learning_rate(c, 48000), 0.0);
}

TEST(Schedule, WarmupLengthIsFloorOfTenPercent) {
  ScheduleConfig c{1.0, 105, false, 0.1};  // floor(10.5) = 10
  EXPECT_DOUBLE_EQ(learning_rate(c, 9), 0.9);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 1.0);
}

TEST(Schedule, ConstantIsFlat) {
  ScheduleConfig c{0.8, 16000, true, 0.1};
  for (int64_t s : {0, 1, 8000, 15999}) EXPECT_DOUBLE_EQ(learning_rate(c, s), 0.8);
}

}  // namespace
}  // namespace lth::train
