#include "pruning/init_scores.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <cmath>

#include "common/error.h"
#include "common/registry.h"
#include "pruning/strategy.h"

namespace lth::pruning {
namespace {

// The network's masked parameters in mask (name) order, each multiplied by its mask.
struct Masked {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
};

Masked apply_and_collect(models::Network& net, const MaskSet& masks) {
  const auto all = net.named_parameters();
  Masked m;
  at::NoGradGuard no_grad;
  for (const auto& [name, mask] : masks) {
    const auto* p = all.find(name);
    require(p != nullptr, "pruning: the network has no parameter '" + name + "'");
    require(p->sizes() == mask.sizes(), "pruning: '" + name + "' has shape " +
                                            c10::str(p->sizes()) + " but its mask has " +
                                            c10::str(mask.sizes()));
    p->mul_(mask.to(p->device(), p->scalar_type()));
    m.names.push_back(name);
    m.params.push_back(*p);
  }
  return m;
}

torch::Tensor chunk_loss(models::Network& net, const ScoringData& data, int64_t i,
                         double temperature) {
  const auto batch = data.chunk(i);
  const auto logits = net.forward(batch.images) / temperature;
  namespace F = torch::nn::functional;
  const auto sum = F::cross_entropy(logits, batch.labels.to(logits.device(), torch::kLong),
                                    F::CrossEntropyFuncOptions().reduction(torch::kSum));
  return sum / static_cast<double>(data.images);
}

void accumulate(std::vector<torch::Tensor>& total, const std::vector<torch::Tensor>& add) {
  for (size_t i = 0; i < total.size(); ++i) {
    if (add[i].defined()) total[i].add_(add[i].detach());
  }
}

std::vector<torch::Tensor> zeros_like_all(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(torch::zeros_like(p).detach());
  return out;
}

void require_data(const ScoringData& data, const std::string& who) {
  require(data.chunks > 0 && data.images > 0 && data.chunk,
          who + ": needs scoring images (imp.pai_batches >= 1)");
}

// g = dL/dw over all scoring images, detached.
std::vector<torch::Tensor> loss_gradient(models::Network& net, const Masked& m,
                                         const ScoringData& data, double temperature) {
  auto g = zeros_like_all(m.params);
  for (int64_t i = 0; i < data.chunks; ++i) {
    accumulate(g, torch::autograd::grad({chunk_loss(net, data, i, temperature)}, m.params, {},
                                        /*retain_graph=*/false, /*create_graph=*/false,
                                        /*allow_unused=*/true));
  }
  return g;
}

TensorMap to_map(const Masked& m, const std::vector<torch::Tensor>& scores) {
  TensorMap out;
  for (size_t i = 0; i < m.names.size(); ++i) {
    out[m.names[i]] = scores[i].detach().to(torch::kCPU, torch::kFloat32);
  }
  return out;
}

// Finite, and not all zero: a mask chosen by position alone would pass for a scored one.
void require_usable(const TensorMap& scores, const std::string& who) {
  bool any = false;
  for (const auto& [name, s] : scores) {
    require(torch::isfinite(s).all().item<bool>(),
            who + ": the scores of '" + name + "' are not finite (NaN or inf): the network's " +
                "outputs or gradients overflowed float32");
    any = any || s.ne(0).any().item<bool>();
  }
  require(any, who + ": every score is zero: the output does not depend on the prunable " +
                   "weights at these weights (e.g. a ResNet at iteration 0, whose head starts " +
                   "at zero); score a later rewind point");
}

MaskSet select(const TensorMap& scores, const InitPruneRequest& q, const std::string& who) {
  require_usable(scores, who);
  return prune_by_scores(scores, q.previous, q.keep_fraction);
}

MaskSet snip(const InitPruneRequest& q) {
  const auto net = q.context.network();
  return select(snip_scores(*net, q.previous, q.context.data), q, "snip");
}

MaskSet grasp(const InitPruneRequest& q) {
  const auto net = q.context.network();
  auto scores = grasp_scores(*net, q.previous, q.context.data, q.context.grasp_temperature);
  // The paper removes the highest -w ⊙ Hg, so the weights kept are the highest w ⊙ Hg.
  for (auto& [_, s] : scores) s.neg_();
  return select(scores, q, "grasp");
}

MaskSet synflow(const InitPruneRequest& q) {
  const int64_t rounds = q.context.synflow_rounds;
  require(rounds >= 1, "synflow: needs at least one round (imp.synflow_rounds)");
  const auto net = q.context.network();
  const auto start = static_cast<double>(count_kept(q.previous));
  MaskSet masks = q.previous;
  for (int64_t r = 1; r <= rounds; ++r) {
    // Round r keeps round(start * keep^(r / rounds)) weights, the last exactly round(start * keep).
    const double density =
        r == rounds
            ? q.keep_fraction
            : std::pow(q.keep_fraction, static_cast<double>(r) / static_cast<double>(rounds));
    const auto target = static_cast<double>(std::llround(start * density));
    const auto remaining = static_cast<double>(count_kept(masks));
    if (target == 0) {  // as magnitude_global keeps none when round(remaining * keep) is 0
      for (auto& [_, m] : masks) m = torch::zeros_like(m);
      break;
    }
    const auto scores = synflow_scores(*net, masks);
    require_usable(scores, "synflow");
    masks = prune_by_scores(scores, masks, std::min(1.0, target / remaining));
  }
  return masks;
}

MaskSet magnitude(const InitPruneRequest& q) {
  const auto net = q.context.network();
  const auto m = apply_and_collect(*net, q.previous);
  std::vector<torch::Tensor> scores;
  for (const auto& p : m.params) scores.push_back(p.detach().abs());
  return select(to_map(m, scores), q, "magnitude_init");
}

using InitStrategyFn = std::function<MaskSet(const InitPruneRequest&)>;

const Registry<InitStrategyFn>& init_registry() {
  static const Registry<InitStrategyFn> r = [] {
    Registry<InitStrategyFn> reg("pruning-at-initialisation strategy");
    reg.add("snip", snip, "|g * w| on the scoring images (Lee et al. 2019)");
    reg.add("grasp", grasp, "prune the highest -w * Hg (Wang et al. 2020)");
    reg.add("synflow", synflow, "iterative synaptic flow, data-free (Tanaka et al. 2020)");
    reg.add("magnitude_init", magnitude, "largest |w| of the network scored, in one shot");
    return reg;
  }();
  return r;
}

}  // namespace

ScoringData scoring_data(std::vector<ScoringBatch> batches) {
  ScoringData data;
  data.chunks = static_cast<int64_t>(batches.size());
  for (const auto& b : batches) data.images += b.images.size(0);
  data.chunk = [batches = std::move(batches)](int64_t i) {
    return batches.at(static_cast<size_t>(i));
  };
  return data;
}

MaskSet prune_at_init(const std::string& strategy, const InitPruneRequest& request) {
  require(!request.previous.empty(), "pruning: no prunable parameters");
  const auto& fn = init_registry().get(strategy);
  require(static_cast<bool>(request.context.network), strategy + ": no network to score");
  return fn(request);
}

std::vector<std::string> init_strategy_names() { return init_registry().names(); }
bool is_init_strategy(const std::string& name) { return init_registry().contains(name); }
bool init_strategy_uses_data(const std::string& name) { return name == "snip" || name == "grasp"; }

TensorMap snip_scores(models::Network& net, const MaskSet& masks, const ScoringData& data) {
  require_data(data, "snip");
  const auto m = apply_and_collect(net, masks);
  net.train();
  const auto g = loss_gradient(net, m, data, /*temperature=*/1.0);
  std::vector<torch::Tensor> scores;
  for (size_t i = 0; i < g.size(); ++i) scores.push_back((g[i] * m.params[i].detach()).abs());
  return to_map(m, scores);
}

TensorMap grasp_scores(models::Network& net, const MaskSet& masks, const ScoringData& data,
                       double temperature) {
  require_data(data, "grasp");
  require(temperature > 0, "grasp: the temperature must be positive");
  const auto m = apply_and_collect(net, masks);
  net.train();
  const auto g = loss_gradient(net, m, data, temperature);
  // Hg = d(g . dL/dw)/dw with g held fixed, chunk by chunk (both are sums over images).
  auto hg = zeros_like_all(m.params);
  for (int64_t i = 0; i < data.chunks; ++i) {
    const auto grads = torch::autograd::grad({chunk_loss(net, data, i, temperature)}, m.params, {},
                                             /*retain_graph=*/true, /*create_graph=*/true,
                                             /*allow_unused=*/true);
    torch::Tensor z;
    for (size_t j = 0; j < grads.size(); ++j) {
      if (!grads[j].defined()) continue;
      const auto term = (grads[j] * g[j]).sum();
      z = z.defined() ? z + term : term;
    }
    if (!z.defined() || !z.requires_grad()) continue;  // no second-order path (e.g. all masked)
    accumulate(hg, torch::autograd::grad({z}, m.params, {}, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true));
  }
  std::vector<torch::Tensor> scores;
  for (size_t i = 0; i < hg.size(); ++i) scores.push_back(-(m.params[i].detach() * hg[i]));
  return to_map(m, scores);
}

TensorMap synflow_scores(models::Network& net, const MaskSet& masks) {
  {
    at::NoGradGuard no_grad;
    for (auto& p : net.named_parameters()) p.value().abs_();
    for (auto& b : net.named_buffers()) {
      if (b.key() == "pixel_mean") {
        b.value().zero_();
      } else if (b.key() == "pixel_std") {
        b.value().fill_(1.0);
      } else if (b.value().is_floating_point()) {
        b.value().abs_();
      }
    }
  }
  net.eval();
  const auto m = apply_and_collect(net, masks);
  const auto& c = net.config();
  const auto ones = torch::full({1, c.image_size, c.image_size, c.in_channels}, 255, torch::kByte);
  const auto r = net.forward(ones).sum();
  require(std::isfinite(r.item<double>()),
          "synflow: the sum of the |w| network's outputs overflowed float32 (R = " +
              std::to_string(r.item<double>()) + "); this network is too deep for SynFlow here");
  const auto grads = torch::autograd::grad({r}, m.params, {}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  std::vector<torch::Tensor> scores;
  for (size_t i = 0; i < grads.size(); ++i) {
    scores.push_back(grads[i].defined() ? (grads[i] * m.params[i].detach()).abs()
                                        : torch::zeros_like(m.params[i]));
  }
  return to_map(m, scores);
}

}  // namespace lth::pruning
