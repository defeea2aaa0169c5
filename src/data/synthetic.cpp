#include "data/synthetic.h"

#include <cmath>

#include "common/error.h"

namespace lth::data {

SyntheticDataset::SyntheticDataset(SyntheticConfig config, Split split)
    : config_(config), split_(split) {
  require(config_.size > 0 && config_.num_classes > 0 && config_.image_size > 0 &&
              config_.channels > 0,
          "synthetic dataset: size, classes, image size and channels must be positive");
}

ImageShape SyntheticDataset::shape() const {
  return {config_.image_size, config_.image_size, config_.channels};
}

std::string SyntheticDataset::describe() const {
  return "synthetic(" + std::string(split_ == Split::Train ? "train" : "test") + ", " +
         std::to_string(config_.size) + " samples)";
}

std::optional<Example> SyntheticDataset::get(int64_t index, Rng&) const {
  const int64_t label = index % config_.num_classes;
  // The class pattern comes from the seed alone; the sample's noise also from split and index.
  Rng proto = Rng::keyed(config_.seed, "synthetic-class", static_cast<uint64_t>(label));
  Rng noise = Rng::keyed(config_.seed, split_ == Split::Train ? "synthetic-train" : "synthetic-test",
                         static_cast<uint64_t>(index));
  const int64_t s = config_.image_size, c = config_.channels;
  const double fx = proto.uniform(0.5, 3.0), fy = proto.uniform(0.5, 3.0);
  const double dx = noise.uniform(-0.5, 0.5), dy = noise.uniform(-0.5, 0.5);
  auto image = torch::empty({s, s, c}, torch::kUInt8);
  auto* out = image.data_ptr<uint8_t>();
  for (int64_t ch = 0; ch < c; ++ch) {
    const double phase = proto.uniform(0.0, 6.283185307179586);
    for (int64_t y = 0; y < s; ++y) {
      for (int64_t x = 0; x < s; ++x) {
        const double u = (x + dx * s * 0.2) / s * 6.283185307179586;
        const double v = (y + dy * s * 0.2) / s * 6.283185307179586;
        // Box-Muller-free noise: sum of uniforms is close enough to Gaussian here.
        const double n = (noise.uniform() + noise.uniform() + noise.uniform() - 1.5) * 2.0;
        const double value = 128.0 + 80.0 * std::sin(fx * u + fy * v + phase) + config_.noise * n;
        out[(y * s + x) * c + ch] = static_cast<uint8_t>(std::clamp(value, 0.0, 255.0));
      }
    }
  }
  return Example{image, label};
}

}  // namespace lth::data
