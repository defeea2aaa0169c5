#include "models/init.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include <cmath>

#include "common/rng.h"

namespace lth::models {
namespace {
constexpr double kTruncatedStd = 0.87962566103423978;  // std of N(0, 1) cut to [-2, 2]
constexpr double kTruncation = 2.0;
}  // namespace

at::Generator init_generator(uint64_t seed, const std::string& param_name) {
  return at::detail::createCPUGenerator(Rng::keyed(seed, "init:" + param_name).next_u64());
}

int64_t fan_in(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() >= 2, "fan_in needs a weight of rank >= 2");
  return weight.numel() / weight.size(0);
}

// Values are drawn on the CPU (the generator is a CPU one) and copied, so a parameter
// already on an accelerator gets the same numbers.
void truncated_standard_normal_(torch::Tensor& t, at::Generator& gen) {
  at::NoGradGuard no_grad;
  auto draw = torch::empty(t.sizes(), torch::kFloat).normal_(0.0, 1.0, gen);
  for (;;) {
    const auto outside = draw.abs() > kTruncation;
    const int64_t n = outside.sum().item<int64_t>();
    if (n == 0) break;
    draw.masked_scatter_(outside, torch::empty({n}, torch::kFloat).normal_(0.0, 1.0, gen));
  }
  t.copy_(draw);
}

void he_truncated_normal_(torch::Tensor& weight, at::Generator& gen) {
  at::NoGradGuard no_grad;
  truncated_standard_normal_(weight, gen);
  weight.mul_(std::sqrt(2.0 / static_cast<double>(fan_in(weight))) / kTruncatedStd);
}

void he_normal_(torch::Tensor& weight, at::Generator& gen) {
  at::NoGradGuard no_grad;
  const double std = std::sqrt(2.0 / static_cast<double>(fan_in(weight)));
  weight.copy_(torch::empty(weight.sizes(), torch::kFloat).normal_(0.0, std, gen));
}

}  // namespace lth::models
