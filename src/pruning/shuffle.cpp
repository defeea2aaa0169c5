#include "pruning/shuffle.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include "common/rng.h"

namespace lth::pruning {

MaskSet shuffle_within_layers(const MaskSet& masks, uint64_t seed) {
  MaskSet out;
  for (const auto& [name, mask] : masks) {
    auto gen =
        at::detail::createCPUGenerator(Rng::keyed(seed, "shuffle-layerwise/" + name).next_u64());
    const auto order = torch::randperm(mask.numel(), gen);
    out[name] = mask.flatten().cpu().index_select(0, order).reshape(mask.sizes()).to(mask.device());
  }
  return out;
}

}  // namespace lth::pruning
