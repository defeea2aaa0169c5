#include "pruning/strategy.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <cmath>

#include "common/registry.h"
#include "common/rng.h"
#include "pruning/top_select.h"

namespace lth::pruning {
namespace {

using ScoreFn = std::function<torch::Tensor(const std::string& name, const torch::Tensor& weight)>;

// How candidates are ranked: by |w| (read straight from the weights), or by a score tensor
// computed from the float32 weights, one score per element.
struct Scorer {
  bool magnitude = false;
  ScoreFn fn;
};

int64_t keep_count(int64_t remaining, double keep_fraction) {
  return std::llround(static_cast<double>(remaining) * keep_fraction);
}

// Candidates = currently unmasked positions of the given layers, flattened in name order; the
// `keep` highest-scoring are kept, ties broken by position (the lower global flat index first,
// as a stable descending sort of all candidates would): see pruning/top_select.h.
MaskSet select_top(const std::vector<std::string>& names, const PruneRequest& req,
                   const Scorer& scorer, MaskSet masks) {
  std::vector<detail::ScoredTensor> tensors;
  for (const auto& name : names) {
    const auto& mask = req.previous.at(name);
    auto it = req.weights.find(name);
    require(it != req.weights.end(), "pruning: the weights have no tensor '" + name + "'");
    require(it->second.sizes() == mask.sizes(),
            "pruning: '" + name + "' has shape " + c10::str(it->second.sizes()) +
                " but its mask has " + c10::str(mask.sizes()));
    auto w = it->second.detach().cpu().to(torch::kFloat32).contiguous();
    detail::ScoredTensor t{mask, w, scorer.magnitude};
    if (!scorer.magnitude) t.scores = scorer.fn(name, w.flatten());
    tensors.push_back(std::move(t));
  }
  const double keep_fraction = req.keep_fraction;
  auto kept = detail::keep_top(tensors, [keep_fraction](int64_t remaining) {
    return keep_count(remaining, keep_fraction);
  });
  for (size_t i = 0; i < names.size(); ++i) {
    masks[names[i]] = kept[i].to(req.previous.at(names[i]).device());
  }
  return masks;
}

std::vector<std::string> names_of(const MaskSet& masks) {
  std::vector<std::string> names;
  for (const auto& [name, _] : masks) names.push_back(name);
  return names;
}

MaskSet prune_with(const PruneRequest& req, const Scorer& scorer, bool layerwise) {
  require(req.keep_fraction > 0.0 && req.keep_fraction <= 1.0,
          "pruning ratio (fraction kept) must be in (0, 1], got " +
              std::to_string(req.keep_fraction));
  if (!layerwise) return select_top(names_of(req.previous), req, scorer, {});
  MaskSet masks;
  for (const auto& name : names_of(req.previous)) {
    masks = select_top({name}, req, scorer, std::move(masks));
  }
  return masks;
}

const Scorer kMagnitude{true, {}};

at::Generator generator_for(uint64_t seed, const std::string& purpose, const std::string& name) {
  Rng rng = Rng::keyed(seed, purpose + "/" + name);
  return at::detail::createCPUGenerator(rng.next_u64());
}

Scorer random_scores(uint64_t seed) {
  return {false, [seed](const std::string& name, const torch::Tensor& w) {
            return torch::rand({w.numel()}, generator_for(seed, "prune-random", name),
                               torch::kFloat32);
          }};
}

// RECIPE.md "Pruning", as the reference computes it. Masked positions are excluded
// explicitly (the reference relies on their weights being 0), so nothing is revived even
// when the threshold is 0.
MaskSet prune_reference(const PruneRequest& req) {
  require(req.keep_fraction > 0.0 && req.keep_fraction <= 1.0,
          "pruning ratio (fraction kept) must be in (0, 1], got " + std::to_string(req.keep_fraction));
  std::vector<torch::Tensor> scores;
  int64_t remaining = 0;
  for (const auto& [name, mask] : req.previous) {
    auto it = req.weights.find(name);
    require(it != req.weights.end(), "pruning: the weights have no tensor '" + name + "'");
    require(it->second.sizes() == mask.sizes(), "pruning: '" + name + "' has shape " +
                                                    c10::str(it->second.sizes()) + " but its mask has " +
                                                    c10::str(mask.sizes()));
    const auto w = it->second.detach().cpu().to(torch::kFloat32);
    const auto kept = mask.detach().cpu() != 0;
    // float32 arithmetic, as the reference: the rounding of |w| + 1 is the point.
    scores.push_back(torch::where(kept, (w.abs() + 1.0f) - 1.0f, torch::full_like(w, -1.0f)));
    remaining += kept.sum().item<int64_t>();
  }
  const int64_t keep = keep_count(remaining, req.keep_fraction);
  MaskSet masks;
  if (keep == 0) {
    for (const auto& [name, mask] : req.previous) masks[name] = torch::zeros_like(mask);
    return masks;
  }
  std::vector<torch::Tensor> flat;
  for (const auto& s : scores) flat.push_back(s.flatten());
  const float threshold = std::get<0>(torch::cat(flat).topk(keep)).min().item<float>();
  size_t i = 0;
  for (const auto& [name, mask] : req.previous) {
    const auto& s = scores[i++];
    masks[name] = ((s >= threshold) & (s >= 0)).to(torch::kFloat32).to(mask.device());
  }
  return masks;
}

using StrategyFn = std::function<MaskSet(const PruneRequest&)>;

const Registry<StrategyFn>& strategy_registry() {
  static const Registry<StrategyFn> r = [] {
    Registry<StrategyFn> reg("pruning strategy");
    reg.add("magnitude_global", [](const PruneRequest& q) { return prune_with(q, kMagnitude, false); },
            "largest |w| over all prunable weights (the reference)");
    reg.add("magnitude_layerwise",
            [](const PruneRequest& q) { return prune_with(q, kMagnitude, true); },
            "largest |w| within each layer, same fraction per layer");
    reg.add("random_global",
            [](const PruneRequest& q) { return prune_with(q, random_scores(q.seed), false); },
            "random positions, global count");
    reg.add("random_layerwise",
            [](const PruneRequest& q) { return prune_with(q, random_scores(q.seed), true); },
            "random positions, same fraction per layer");
    reg.add("magnitude_reference", prune_reference,
            "the reference's formula: (|w|+1)-1 in float32, ties at the threshold kept");
    return reg;
  }();
  return r;
}

}  // namespace

MaskSet prune(const std::string& strategy, const PruneRequest& request) {
  require(!request.previous.empty(), "pruning: no prunable parameters");
  return strategy_registry().get(strategy)(request);
}

std::vector<std::string> strategy_names() { return strategy_registry().names(); }

MaskSet prune_by_scores(const TensorMap& scores, const MaskSet& previous, double keep_fraction) {
  require(!previous.empty(), "pruning: no prunable parameters");
  const Scorer as_is{false, [](const std::string&, const torch::Tensor& s) { return s; }};
  return prune_with({scores, previous, keep_fraction}, as_is, /*layerwise=*/false);
}

MaskSet random_masks_like(const MaskSet& like, uint64_t seed) {
  MaskSet out;
  for (const auto& [name, mask] : like) {
    const int64_t keep = mask.sum().item<int64_t>();
    auto order = torch::randperm(mask.numel(), generator_for(seed, "random-like", name));
    auto flat = torch::zeros({mask.numel()}, torch::kFloat32);
    flat.index_fill_(0, order.narrow(0, 0, keep), 1.0);
    out[name] = flat.reshape(mask.sizes()).to(mask.device());
  }
  return out;
}

}  // namespace lth::pruning
