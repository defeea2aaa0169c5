#pragma once
// Mixed-precision autocast scopes in the run's precision (models/precision.h): bf16 on CPU
// and CUDA, fp16 on CUDA. Training and evaluation run under the same scope, as the reference
// evaluates in its compute dtype; the classifier head runs in float32 inside it
// (float32_head).
#include <ATen/autocast_mode.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "models/precision.h"

namespace lth::models {

// Enables autocast in `precision`'s dtype for `device` for the lifetime of the guard; a
// no-op for fp32. The previous state (enabled flag and dtype) is restored on exit.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, torch::Device device)
      : enabled_(precision != Precision::kFloat32), cuda_(device.is_cuda()) {
    if (!enabled_) return;
    const auto dtype = compute_dtype(precision);
    if (cuda_) {
      previous_ = at::autocast::is_enabled();
      previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(true);
    } else {
      previous_ = at::autocast::is_cpu_enabled();
      previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(true);
    }
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (cuda_) {
      at::autocast::set_enabled(previous_);
      at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    } else {
      at::autocast::set_cpu_enabled(previous_);
      at::autocast::set_autocast_cpu_dtype(previous_dtype_);
    }
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  bool cuda_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// Turns autocast off (CPU and CUDA) for its lifetime and restores it after.
class AutocastOff {
 public:
  AutocastOff() : cpu_(at::autocast::is_cpu_enabled()), cuda_(at::autocast::is_enabled()) {
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_enabled(false);
  }
  ~AutocastOff() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(cuda_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool cpu_;
  bool cuda_;
};

// The classifier on float32 features with float32 weights, whatever autocast is on: the
// reference computes its head (and so the logits the loss and the accuracy see) in float32.
inline torch::Tensor float32_head(torch::nn::Linear& head, const torch::Tensor& features) {
  const AutocastOff off;
  return head->forward(features.to(torch::kFloat32));
}

}  // namespace lth::models
