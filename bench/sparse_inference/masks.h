#pragma once
// The mask families of bench/sparse_inference, on a network's conv kernels (the head stays
// dense, as lth prunes conv kernels only for ResNets):
//   uniform  every conv kernel at density d except the stem (conv1), which stays dense;
//   erk      Erdős–Rényi-Kernel (Evci et al. 2020): layer density ∝ (c_in + c_out + k_h + k_w)
//            / (c_in c_out k_h k_w), scaled so that the conv kernels keep d overall, layers
//            that would exceed 1 held dense and the rest rescaled;
//   global   lth's own global magnitude pruning (pruning::prune("magnitude_global")) of the
//            initialised network in one shot to d.
// uniform and erk keep each layer's largest |w|; every family zeroes the pruned weights.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"

namespace lth::bench {

inline std::map<std::string, double> erk_densities(const std::map<std::string, torch::Tensor>& w,
                                                   double density) {
  std::map<std::string, double> raw, out;
  int64_t total = 0;
  for (const auto& [name, t] : w) {
    double sum = 0, prod = 1;
    for (auto s : t.sizes()) {
      sum += static_cast<double>(s);
      prod *= static_cast<double>(s);
    }
    raw[name] = sum / prod;
    total += t.numel();
  }
  std::map<std::string, bool> dense;
  for (;;) {
    double keep = density * static_cast<double>(total), divisor = 0;
    for (const auto& [name, t] : w) {
      if (dense[name])
        keep -= static_cast<double>(t.numel());
      else
        divisor += raw[name] * static_cast<double>(t.numel());
    }
    const double eps = keep / divisor;
    std::string worst;
    double worst_density = 1.0;
    for (const auto& [name, r] : raw)
      if (!dense[name] && eps * r > worst_density) {
        worst_density = eps * r;
        worst = name;
      }
    if (worst.empty()) {
      for (const auto& [name, r] : raw) out[name] = dense[name] ? 1.0 : eps * r;
      return out;
    }
    dense[worst] = true;
  }
}

// Keeps the round(d n) largest |w| of t (ties: the first by position, via a stable sort).
inline torch::Tensor top_magnitude_mask(const torch::Tensor& t, double d) {
  const int64_t n = t.numel();
  const int64_t keep = std::min<int64_t>(n, std::llround(d * static_cast<double>(n)));
  auto mask = torch::zeros({n}, torch::kFloat32);
  if (keep > 0) {
    const auto order = std::get<1>(t.detach().abs().flatten().sort(/*stable=*/true, 0, true));
    mask.index_fill_(0, order.slice(0, 0, keep), 1.0);
  }
  return mask.view(t.sizes());
}

// Per-layer masks (name -> 0/1 float tensor) of `family` at overall conv density `d` for the
// conv kernels of `weights` (a snapshot of the initialised network).
inline pruning::MaskSet family_masks(const std::string& family, const models::Network& net,
                                     const std::map<std::string, torch::Tensor>& weights,
                                     double d) {
  pruning::MaskSet masks;
  if (family == "global") {
    const auto dense = pruning::dense_masks(net, pruning::PrunableSet::Conv);
    return pruning::prune("magnitude_global", {weights, dense, d, 0});
  }
  std::map<std::string, torch::Tensor> convs;
  for (const auto& [name, t] : weights)
    if (net.kind_of(name) == models::ParamKind::ConvKernel) convs[name] = t;
  std::map<std::string, double> density;
  if (family == "uniform") {
    for (const auto& [name, t] : convs) density[name] = name == "conv1.weight" ? 1.0 : d;
  } else if (family == "erk") {
    density = erk_densities(convs, d);
  } else {
    throw UserError("--families: unknown family '" + family + "' (uniform, erk, global)");
  }
  for (const auto& [name, t] : convs) masks[name] = top_magnitude_mask(t, density[name]);
  return masks;
}

}  // namespace lth::bench
