#pragma once
// Seeded initialisers. Each parameter draws from its own CPU generator, seeded from
// (seed, parameter name) through lth::Rng::keyed, so its initial values depend on nothing
// else: not on thread count, not on the global generator, not on which layers were
// initialised before it (adding a layer to a network leaves the others unchanged).
// All functions write in place without recording autograd history.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace lth::models {

at::Generator init_generator(uint64_t seed, const std::string& param_name);

// Fan-in of a Linear [out, in] or conv [out, in, kh, kw] weight: in * kh * kw.
int64_t fan_in(const torch::Tensor& weight);

// Standard normal truncated to [-2, 2], by redrawing out-of-range values from `gen`.
void truncated_standard_normal_(torch::Tensor& t, at::Generator& gen);

// He normal, fan-in, truncated: Flax's variance_scaling(2.0, "fan_in", "truncated_normal"),
// i.e. truncated standard normal * sqrt(2 / fan_in) / 0.8796..., the divisor being the std of
// a standard normal truncated to [-2, 2], so that the result has variance 2 / fan_in.
void he_truncated_normal_(torch::Tensor& weight, at::Generator& gen);

// He normal, fan-in (torch.nn.init.kaiming_normal_ defaults): N(0, 2 / fan_in).
void he_normal_(torch::Tensor& weight, at::Generator& gen);

}  // namespace lth::models
