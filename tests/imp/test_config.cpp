#include <gtest/gtest.h>

#include "common/error.h"
#include "imp/config.h"

namespace lth::imp {
namespace {

TEST(ImpConfig, TomlRoundTripAndOverrides) {
  ImpConfig c = default_config();
  apply_override(c, "train.lr=0.25");
  apply_override(c, "train.mixed_precision=yes");  // the reference's boolean spellings
  apply_override(c, "imp.strategy=magnitude_layerwise");
  ImpConfig back;
  apply_toml(back, to_toml(c), "test");
  EXPECT_EQ(back.lr, 0.25);
  EXPECT_TRUE(back.mixed_precision);
  EXPECT_EQ(back.strategy, "magnitude_layerwise");
  EXPECT_TRUE(conflicts(c, back).empty());
  EXPECT_EQ(to_toml_string(c), to_toml_string(back));
}

TEST(ImpConfig, ConflictsListOnlyResultAffectingKeys) {
  ImpConfig a = default_config(), b = default_config();
  b.threads = 7;      // runtime only
  b.cycles = 20;      // extends the run
  EXPECT_TRUE(conflicts(a, b).empty());
  b.lr = 0.3;
  const auto diff = conflicts(a, b);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0], "train.lr: 0.1 -> 0.3");
}

TEST(ImpConfig, BadSettingsNameTheKey) {
  ImpConfig c;
  EXPECT_THROW(apply_override(c, "train.nope=1"), UserError);
  EXPECT_THROW(apply_override(c, "train.batch_size=1.5"), UserError);
  EXPECT_THROW(apply_override(c, "lr=1"), UserError);
  c.pruning_ratio = 1.5;
  try {
    validate(c);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("imp.pruning_ratio"), std::string::npos);
  }
}

}  // namespace
}  // namespace lth::imp
