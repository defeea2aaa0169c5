#pragma once
// The layerwise-shuffle control (Frankle et al. 2021, "Pruning neural networks at
// initialization: why are we missing the mark?"): each layer keeps exactly as many weights
// as in `masks`, at positions permuted uniformly within the layer by a generator keyed by
// (seed, "shuffle-layerwise", parameter name). A layer with every weight kept, or none, is
// unchanged; otherwise positions move (with overwhelming probability).
#include <cstdint>

#include "pruning/mask.h"

namespace lth::pruning {

MaskSet shuffle_within_layers(const MaskSet& masks, uint64_t seed);

}  // namespace lth::pruning
