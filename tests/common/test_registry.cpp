#include <gtest/gtest.h>

#include "common/registry.h"

namespace lth {

TEST(Registry, UnknownNameListsKnownOnes) {
  Registry<std::function<int()>> registry("widget");
  registry.add("one", [] { return 1; });
  registry.add("two", [] { return 2; });
  EXPECT_EQ(registry.get("two")(), 2);
  try {
    registry.get("three");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown widget 'three' (known: one, two)");
  }
}

}  // namespace lth
