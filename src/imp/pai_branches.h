#pragma once
// Pruning-at-initialisation branches of `lth imp` (pruning/init_scores.h) and the
// layerwise-shuffle control. For cycle k (k >= 1), each starts from the main line's
// cycle-k *kept count*, reached in one shot from the dense network:
//   snip, grasp, synflow, magnitude_init   score the weights of the ticket's rewind point
//       (iter_<imp.rewind_iterations>, what the main line rewinds to), keep the main line's
//       cycle-k count, and train those weights with the cycle's schedule. The papers prune
//       at iteration 0; we prune where the ticket starts, so a branch differs from the
//       ticket only in how its mask was found (and at iteration 0 our ResNets' zero head
//       gives SNIP, GraSP and SynFlow nothing to score).
//   <strategy>_iter0   the same, scored on and trained from iter_000000 (the papers' setting)
//   shuffle_layerwise  the main line's cycle-k mask with positions permuted within each
//       layer (Frankle et al. 2021), keyed by (seed, cycle); rewound weights
// Scoring images: imp.pai_batches batches of 10 x classes training images (class-balanced
// where the dataset knows labels cheaply, data/holdout.h), read through the training
// transform keyed by sample, in forward passes of train.batch_size. Every rank scores; rank
// 0's masks are broadcast so all ranks train the same mask.
#include <string>

#include "imp/branches.h"
#include "pruning/init_scores.h"

namespace lth::imp {

// Masks and weights of a pruning-at-initialisation branch: `strategy` (an init strategy)
// applied to `weights`, keeping as many weights as `ticket_masks` holds.
BranchStart pai_branch_start(const std::string& strategy, const BranchContext& context,
                             const pruning::MaskSet& ticket_masks, io::Checkpoint weights);

// The scoring images of a run (see above).
pruning::ScoringData pai_scoring_data(const Experiment& experiment);

}  // namespace lth::imp
