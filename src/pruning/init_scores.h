#pragma once
// Pruning at initialisation: strategies that score a *network* (on a few batches of training
// data, or on none) rather than its weights alone (strategy.h), chosen by name:
//   snip            |g ⊙ w|, g = dL/dw on the scoring images, BN in train mode (Lee et al. 2019)
//   grasp           -w ⊙ (H g) with the logits divided by T = 200, H g by double backward, BN
//                   in train mode; the *highest* scores are pruned, as the paper and its
//                   code do (Wang et al. 2020)
//   synflow         |dR/dw ⊙ w|, R = sum of the outputs of the network with every parameter
//                   and buffer replaced by its absolute value, on one all-ones input, BN in
//                   eval mode; pruned in `synflow_rounds` rounds to the exponential density
//                   schedule keep_fraction^(r / rounds), r = 1..rounds (Tanaka et al. 2020).
//                   Data-free.
//   magnitude_init  |w|: magnitude_global on the weights the network holds
// L is the mean cross-entropy (no label smoothing) over all scoring images; H and g are taken
// over the prunable (masked) parameters only. Every strategy scores the network with its
// weights multiplied by `previous`, then keeps exactly round(remaining * keep_fraction) of
// the unmasked weights by one global count (prune_by_scores: never revives a pruned weight,
// ties broken by position). Scores that are all zero (nothing flows from the prunable
// weights to the output, e.g. a zero-initialised head) are a UserError. SynFlow runs in
// float32, as the authors' code: a very deep network whose |w|-forward overflows is a
// UserError, not a silent NaN mask.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pruning/mask.h"

namespace lth::pruning {

struct ScoringBatch {
  torch::Tensor images;  // uint8 [N, H, W, C], what Network::forward takes
  torch::Tensor labels;  // int64 [N]
};

// The scoring images, read in chunks on demand (one forward pass each); chunk(i) must give
// the same images every time it is called (GraSP reads them twice).
struct ScoringData {
  int64_t chunks = 0;
  int64_t images = 0;  // over all chunks: the loss is the mean over these
  std::function<ScoringBatch(int64_t chunk)> chunk;
};
// Data held in memory, one chunk per batch.
ScoringData scoring_data(std::vector<ScoringBatch> batches);

struct ScoringContext {
  // A freshly made network holding the weights to score, on `device`. Scorers change its
  // weights, buffers and mode, so it must return a new one on every call.
  std::function<models::NetworkPtr()> network;
  ScoringData data;  // unused by synflow and magnitude_init
  torch::Device device = torch::kCPU;
  int64_t synflow_rounds = 100;
  double grasp_temperature = 200.0;
};

struct InitPruneRequest {
  const MaskSet& previous;  // current masks; their keys are the prunable set
  double keep_fraction = 1.0;
  const ScoringContext& context;
};

MaskSet prune_at_init(const std::string& strategy, const InitPruneRequest& request);
std::vector<std::string> init_strategy_names();
bool is_init_strategy(const std::string& name);
// Whether the strategy reads ScoringContext::data (snip, grasp).
bool init_strategy_uses_data(const std::string& name);

// One scoring pass, per masked parameter, same shapes, on the CPU in float32 (exposed for
// tests). Each first multiplies the network's masked parameters by `masks`. snip and synflow
// scores: higher = kept first. grasp_scores returns the paper's -w ⊙ Hg: higher = pruned first.
TensorMap snip_scores(models::Network& net, const MaskSet& masks, const ScoringData& data);
TensorMap grasp_scores(models::Network& net, const MaskSet& masks, const ScoringData& data,
                       double temperature);
// Linearises `net` in place (absolute values, eval mode, pixel statistics 0 and 1 so the
// first layer sees exactly 1.0) before scoring; calling it again with a sparser mask is the
// next SynFlow round.
TensorMap synflow_scores(models::Network& net, const MaskSet& masks);

}  // namespace lth::pruning
