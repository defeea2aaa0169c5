#include "imp/pai_branches.h"

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/error.h"
#include "common/parallel.h"
#include "data/holdout.h"
#include "pruning/init_scores.h"

namespace lth::imp {
namespace {

// Scoring images per batch, per class: the samples_per_class = 10 of SNIP's and GraSP's
// reference code (GraSP_fetch_data).
constexpr int64_t kImagesPerClass = 10;

std::vector<int64_t> scoring_indices(const Experiment& ex) {
  const auto& train = *ex.train_set;
  const int64_t wanted = ex.config().pai_batches * kImagesPerClass * train.num_classes();
  if (wanted < train.size())
    return data::choose_holdout(train, wanted, Rng::keyed(ex.seed(), "pai-images").next_u64());
  std::vector<int64_t> all(static_cast<size_t>(train.size()));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return all;
}

// Rank 0's masks on every rank (scores on a GPU need not be bitwise equal across ranks).
void agree_on_masks(const Experiment& ex, pruning::MaskSet& masks) {
  if (ex.comm()->world_size() <= 1) return;
  std::vector<torch::Tensor> tensors;
  for (auto& [_, m] : masks) tensors.push_back(m.contiguous());
  ex.comm()->broadcast(tensors, /*root=*/0);
  size_t i = 0;
  for (auto& [_, m] : masks) m = tensors[i++].to(m.device());
}

}  // namespace

pruning::ScoringData pai_scoring_data(const Experiment& ex) {
  const auto indices = scoring_indices(ex);
  const auto per_pass = std::max<int64_t>(1, ex.config().batch_size);
  pruning::ScoringData data;
  data.images = static_cast<int64_t>(indices.size());
  data.chunks = (data.images + per_pass - 1) / per_pass;
  const auto train = ex.train_set;
  const auto seed = ex.seed();
  data.chunk = [train, indices, per_pass, seed](int64_t chunk) {
    const auto begin = chunk * per_pass;
    const auto end = std::min<int64_t>(static_cast<int64_t>(indices.size()), begin + per_pass);
    // Decoded on the intra-op threads; each sample's randomness is keyed by its index.
    std::vector<std::optional<data::Example>> examples(static_cast<size_t>(end - begin));
    lth::parallel_for(begin, end, 1, [&](int64_t from, int64_t to) {
      for (int64_t i = from; i < to; ++i) {
        const auto index = indices[static_cast<size_t>(i)];
        Rng rng = Rng::keyed(seed, "pai-data", static_cast<uint64_t>(index));
        examples[static_cast<size_t>(i - begin)] = train->get(index, rng);
      }
    });
    std::vector<torch::Tensor> images;
    std::vector<int64_t> labels;
    for (auto& example : examples) {
      if (!example) continue;
      images.push_back(example->image);
      labels.push_back(example->label);
    }
    require(!images.empty(),
            "pruning at initialisation: no readable image among the scoring images");
    return pruning::ScoringBatch{torch::stack(images), torch::tensor(labels, torch::kInt64)};
  };
  return data;
}

BranchStart pai_branch_start(const std::string& strategy, const BranchContext& c,
                             const pruning::MaskSet& ticket_masks, io::Checkpoint weights) {
  const auto& ex = c.experiment;
  pruning::MaskSet dense;
  for (const auto& [name, m] : ticket_masks) dense[name] = torch::ones_like(m);
  const auto kept = pruning::count_kept(ticket_masks), total = pruning::count_total(dense);
  pruning::ScoringContext context;
  context.network = [&ex, &weights] {
    auto net = ex.make_network();
    load_parameters(*net, weights, "pruning-at-initialisation scoring");
    net->to(ex.device());
    return net;
  };
  if (pruning::init_strategy_uses_data(strategy)) context.data = pai_scoring_data(ex);
  context.device = ex.device();
  context.synflow_rounds = ex.config().synflow_rounds;
  const double keep = static_cast<double>(kept) / static_cast<double>(total);
  auto masks = pruning::prune_at_init(strategy, {dense, keep, context});
  require(pruning::count_kept(masks) == kept, "branch " + strategy + ": kept " +
                                                  std::to_string(pruning::count_kept(masks)) +
                                                  " weights, the ticket " + std::to_string(kept));
  agree_on_masks(ex, masks);
  return BranchStart{std::move(masks), std::move(weights)};
}

}  // namespace lth::imp
