#pragma once
// Pruning strategies, chosen by name from a registry:
//   magnitude_global     one threshold over all prunable weights (the reference)
//   magnitude_layerwise  each layer keeps the same fraction of its remaining weights
//   random_global        random positions, one global count
//   random_layerwise     random positions, each layer keeps the same fraction
//   magnitude_reference  the reference's own formula, for continuing a reference run
//                        bit for bit: scores (|w| + 1) - 1 in float32, one global threshold
//                        at the round(remaining * keep_fraction)-th largest score, and every
//                        unmasked weight scoring >= it kept, so ties at the threshold all
//                        survive (a few dozen more than the count at ResNet-50 scale)
// Every other strategy keeps exactly round(remaining * keep_fraction) of the currently
// unmasked weights (per layer or globally) and breaks ties in |w| deterministically by
// position (parameter order by name, then flat index). None revives a pruned weight.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pruning/mask.h"

namespace lth::pruning {

struct PruneRequest {
  const TensorMap& weights;   // scores come from these (e.g. the previous cycle's best_acc)
  const MaskSet& previous;    // current masks; their keys are the prunable set
  double keep_fraction = 0.8; // the reference's --pruning_ratio: fraction of remaining kept
  uint64_t seed = 0;          // random strategies only
};

MaskSet prune(const std::string& strategy, const PruneRequest& request);
std::vector<std::string> strategy_names();

// Keeps the round(remaining * keep_fraction) highest `scores` among the unmasked weights of
// `previous` (one global count, ties by position), as magnitude_global does with |w|: the
// selection behind scorers that need more than the weights (pruning/init_scores.h).
// `scores` has a tensor of the mask's shape for every masked parameter.
MaskSet prune_by_scores(const TensorMap& scores, const MaskSet& previous, double keep_fraction);

// Random masks with the same per-layer kept counts as `like` (the random-pruning control).
MaskSet random_masks_like(const MaskSet& like, uint64_t seed);

}  // namespace lth::pruning
