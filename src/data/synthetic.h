#pragma once
// A small, learnable, fully deterministic dataset for tests and demos: class c is a
// class-specific sinusoidal pattern (frequencies and phases drawn from the seed) plus
// per-sample noise and a random shift, so a small network learns it in a few steps but
// not trivially. Sample i has label i % num_classes; content depends only on (seed, split, i).
#include "data/dataset.h"

namespace lth::data {

struct SyntheticConfig {
  int64_t size = 512;
  int64_t num_classes = 10;
  int64_t image_size = 28;
  int64_t channels = 1;
  double noise = 40.0;  // std of the per-pixel noise, in 0..255 units
  uint64_t seed = 0;
};

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(SyntheticConfig config, Split split);
  int64_t size() const override { return config_.size; }
  int64_t num_classes() const override { return config_.num_classes; }
  ImageShape shape() const override;
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  std::optional<int64_t> label(int64_t index) const override { return index % config_.num_classes; }
  std::string describe() const override;

 private:
  SyntheticConfig config_;
  Split split_;
};

}  // namespace lth::data
