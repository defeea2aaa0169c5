#pragma once
// Mixed-precision autocast scopes: float16 on CUDA (with loss scaling), bfloat16 on CPU.
#include <ATen/autocast_mode.h>
#include <torch/types.h>

namespace lth::train {

// Enables autocast for `device` for the lifetime of the guard; a no-op when !enabled.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, torch::Device device) : enabled_(enabled), cuda_(device.is_cuda()) {
    if (!enabled_) return;
    if (cuda_) {
      previous_ = at::autocast::is_enabled();
      at::autocast::set_enabled(true);
    } else {
      previous_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (cuda_) {
      at::autocast::set_enabled(previous_);
    } else {
      at::autocast::set_cpu_enabled(previous_);
    }
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  bool cuda_;
  bool previous_ = false;
};

}  // namespace lth::train
