#include <gtest/gtest.h>

#include <set>

#include "common/rng.h"

namespace lth {

TEST(Rng, KeyedStreamsAreReproducibleAndDistinct) {
  Rng a = Rng::keyed(7, "crop", 3, 1);
  Rng b = Rng::keyed(7, "crop", 3, 1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  // Changing any key component changes the stream.
  std::set<uint64_t> firsts;
  firsts.insert(Rng::keyed(7, "crop", 3, 1).next_u64());
  firsts.insert(Rng::keyed(8, "crop", 3, 1).next_u64());
  firsts.insert(Rng::keyed(7, "flip", 3, 1).next_u64());
  firsts.insert(Rng::keyed(7, "crop", 4, 1).next_u64());
  firsts.insert(Rng::keyed(7, "crop", 3, 2).next_u64());
  EXPECT_EQ(firsts.size(), 5u);
}

TEST(Rng, UniformAndBelowStayInRangeWithSaneMean) {
  Rng rng(123);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ASSERT_LT(rng.below(7), 7u);
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
}

}  // namespace lth
