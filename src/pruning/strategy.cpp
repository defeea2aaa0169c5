#include "pruning/strategy.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "common/registry.h"
#include "common/rng.h"

namespace lth::pruning {
namespace {

using ScoreFn = std::function<torch::Tensor(const std::string& name, const torch::Tensor& weight)>;

// Candidates = currently unmasked positions of the given layers, flattened in name order.
struct Candidates {
  std::vector<std::string> names;
  std::vector<int64_t> offsets;  // start of each layer in the global flat index space
  torch::Tensor positions;       // global flat indices of unmasked entries
  torch::Tensor scores;          // one score per candidate
};

Candidates gather(const std::vector<std::string>& names, const PruneRequest& req,
                  const ScoreFn& score) {
  Candidates c;
  std::vector<torch::Tensor> positions, scores;
  int64_t offset = 0;
  for (const auto& name : names) {
    const auto& mask = req.previous.at(name);
    auto it = req.weights.find(name);
    require(it != req.weights.end(), "pruning: the weights have no tensor '" + name + "'");
    require(it->second.sizes() == mask.sizes(),
            "pruning: '" + name + "' has shape " + c10::str(it->second.sizes()) +
                " but its mask has " + c10::str(mask.sizes()));
    auto alive = mask.flatten().cpu().nonzero().squeeze(1);
    positions.push_back(alive + offset);
    scores.push_back(score(name, it->second.detach().cpu().to(torch::kFloat32).flatten())
                         .index_select(0, alive));
    c.names.push_back(name);
    c.offsets.push_back(offset);
    offset += mask.numel();
  }
  c.offsets.push_back(offset);
  c.positions = torch::cat(positions);
  c.scores = torch::cat(scores);
  return c;
}

int64_t keep_count(int64_t remaining, double keep_fraction) {
  require(keep_fraction > 0.0 && keep_fraction <= 1.0,
          "pruning ratio (fraction kept) must be in (0, 1], got " + std::to_string(keep_fraction));
  return std::llround(static_cast<double>(remaining) * keep_fraction);
}

// Keeps the `keep` highest-scoring candidates; a stable descending sort breaks ties by position.
MaskSet select_top(const Candidates& c, int64_t keep, const MaskSet& previous, MaskSet masks) {
  auto order = std::get<1>(torch::sort(c.scores, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto kept = c.positions.index_select(0, order.narrow(0, 0, keep));
  auto flat = torch::zeros({c.offsets.back()}, torch::kFloat32);
  flat.index_fill_(0, kept, 1.0);
  for (size_t i = 0; i < c.names.size(); ++i) {
    const auto& prev = previous.at(c.names[i]);
    masks[c.names[i]] = flat.slice(0, c.offsets[i], c.offsets[i + 1])
                            .reshape(prev.sizes())
                            .clone()
                            .to(prev.device());
  }
  return masks;
}

std::vector<std::string> names_of(const MaskSet& masks) {
  std::vector<std::string> names;
  for (const auto& [name, _] : masks) names.push_back(name);
  return names;
}

MaskSet prune_with(const PruneRequest& req, const ScoreFn& score, bool layerwise) {
  if (!layerwise) {
    const auto c = gather(names_of(req.previous), req, score);
    return select_top(c, keep_count(c.positions.numel(), req.keep_fraction), req.previous, {});
  }
  MaskSet masks;
  for (const auto& name : names_of(req.previous)) {
    const auto c = gather({name}, req, score);
    masks = select_top(c, keep_count(c.positions.numel(), req.keep_fraction), req.previous,
                       std::move(masks));
  }
  return masks;
}

torch::Tensor magnitude(const std::string&, const torch::Tensor& w) { return w.abs(); }

at::Generator generator_for(uint64_t seed, const std::string& purpose, const std::string& name) {
  Rng rng = Rng::keyed(seed, purpose + "/" + name);
  return at::detail::createCPUGenerator(rng.next_u64());
}

ScoreFn random_scores(uint64_t seed) {
  return [seed](const std::string& name, const torch::Tensor& w) {
    return torch::rand({w.numel()}, generator_for(seed, "prune-random", name));
  };
}

using StrategyFn = std::function<MaskSet(const PruneRequest&)>;

const Registry<StrategyFn>& registry() {
  static const Registry<StrategyFn> r = [] {
    Registry<StrategyFn> reg("pruning strategy");
    reg.add("magnitude_global", [](const PruneRequest& q) { return prune_with(q, magnitude, false); },
            "largest |w| over all prunable weights (the reference)");
    reg.add("magnitude_layerwise",
            [](const PruneRequest& q) { return prune_with(q, magnitude, true); },
            "largest |w| within each layer, same fraction per layer");
    reg.add("random_global",
            [](const PruneRequest& q) { return prune_with(q, random_scores(q.seed), false); },
            "random positions, global count");
    reg.add("random_layerwise",
            [](const PruneRequest& q) { return prune_with(q, random_scores(q.seed), true); },
            "random positions, same fraction per layer");
    return reg;
  }();
  return r;
}

}  // namespace

MaskSet prune(const std::string& strategy, const PruneRequest& request) {
  require(!request.previous.empty(), "pruning: no prunable parameters");
  return registry().get(strategy)(request);
}

std::vector<std::string> strategy_names() { return registry().names(); }

MaskSet prune_by_scores(const TensorMap& scores, const MaskSet& previous, double keep_fraction) {
  require(!previous.empty(), "pruning: no prunable parameters");
  const auto as_is = [](const std::string&, const torch::Tensor& s) { return s; };
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
