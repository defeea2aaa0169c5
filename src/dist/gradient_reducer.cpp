#include "dist/gradient_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include <mutex>

#include "common/error.h"

namespace lth::dist {

struct GradientReducer::State {
  struct Bucket {
    std::vector<size_t> members;  // parameter indices
    size_t pending = 0;           // gradients not yet ready this step
    torch::Tensor flat;           // the bucket's buffer, allocated once
    std::unique_ptr<PendingCollective> work;
  };

  std::vector<torch::Tensor> parameters;
  CommunicatorPtr comm;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;  // parameter index -> bucket
  std::vector<bool> ready;        // parameter index -> gradient final this step
  size_t next_to_start = 0;       // buckets start in order
  bool armed = false;
  std::mutex mutex;               // hooks may fire on autograd's device threads (CUDA)
  // Each parameter's gradient accumulator and our hook's key on it, to remove the hook.
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;

  // A new step: no gradient ready, no bucket started.
  void reset() {
    next_to_start = 0;
    std::fill(ready.begin(), ready.end(), false);
    for (auto& b : buckets) b.pending = b.members.size();
  }

  void start_ready_buckets() {
    while (next_to_start < buckets.size() && buckets[next_to_start].pending == 0) start(buckets[next_to_start++]);
  }

  void start(Bucket& b) {
    at::NoGradGuard no_grad;
    int64_t offset = 0;
    for (const auto i : b.members) {
      const auto& p = parameters[i];
      auto slot = b.flat.narrow(0, offset, p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
      } else {
        slot.zero_();
      }
      offset += p.numel();
    }
    b.work = comm->start_all_reduce_sum(b.flat);
  }

  void on_gradient_ready(size_t index) {
    const std::lock_guard<std::mutex> lock(mutex);
    if (!armed || ready[index]) return;
    ready[index] = true;
    --buckets[bucket_of[index]].pending;
    start_ready_buckets();
  }
};

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters, CommunicatorPtr comm,
                                 ReducerOptions options)
    : state_(std::make_shared<State>()) {
  auto& s = *state_;
  s.parameters = std::move(parameters);
  s.comm = std::move(comm);
  s.bucket_of.resize(s.parameters.size());
  s.ready.assign(s.parameters.size(), false);
  // Reverse registration order; a new bucket when the cap is reached or the dtype or device
  // changes (a flat buffer holds one of each).
  int64_t bytes = 0;
  for (size_t k = s.parameters.size(); k-- > 0;) {
    const auto& p = s.parameters[k];
    require(p.defined() && p.requires_grad(), "gradient reducer: every parameter must require a gradient");
    const int64_t cap = s.buckets.size() <= 1 ? options.first_bucket_bytes : options.bucket_bytes;
    const bool fits = !s.buckets.empty() && bytes < cap &&
                      s.parameters[s.buckets.back().members.front()].scalar_type() == p.scalar_type() &&
                      s.parameters[s.buckets.back().members.front()].device() == p.device();
    if (!fits) {
      s.buckets.emplace_back();
      bytes = 0;
    }
    s.buckets.back().members.push_back(k);
    s.bucket_of[k] = s.buckets.size() - 1;
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (auto& b : s.buckets) {
    int64_t numel = 0;
    for (const auto i : b.members) numel += s.parameters[i].numel();
    b.flat = torch::empty({numel}, s.parameters[b.members.front()].options().requires_grad(false));
  }
  // The hooks hold the state weakly, so that one still running while the reducer goes away
  // (an exception unwinding through backward) does nothing.
  const std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < s.parameters.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(s.parameters[i]);
    require(accumulator != nullptr, "gradient reducer: a parameter is not a leaf tensor");
    const auto key = accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [weak, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (auto state = weak.lock()) state->on_gradient_ready(i);
          return outputs;
        }));
    s.hooks.emplace_back(std::move(accumulator), key);
  }
}

GradientReducer::~GradientReducer() {
  // Outstanding collectives finish (or fail) in their handles' destructors.
  for (auto& [accumulator, key] : state_->hooks) accumulator->del_post_hook(key);
}

void GradientReducer::arm() {
  auto& s = *state_;
  const std::lock_guard<std::mutex> lock(s.mutex);
  s.reset();
  s.armed = true;
}

void GradientReducer::finish() {
  auto& s = *state_;
  {
    const std::lock_guard<std::mutex> lock(s.mutex);
    // A rank with no backward this step (every sample of its batch unreadable) was never
    // armed: it still joins the same collectives, with zero gradients where none exist.
    if (!s.armed) s.reset();
    // Parameters without a gradient this step (unused) never fired: their buckets start now.
    for (auto& b : s.buckets) b.pending = 0;
    s.start_ready_buckets();
    s.armed = false;
  }
  at::NoGradGuard no_grad;
  for (auto& b : s.buckets) {
    b.work->wait();
    b.work.reset();
    int64_t offset = 0;
    for (const auto i : b.members) {
      auto& p = s.parameters[i];
      auto sum = b.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(sum);
      } else {
        p.mutable_grad() = sum.clone();
      }
      offset += p.numel();
    }
  }
}

std::vector<std::vector<size_t>> GradientReducer::buckets() const {
  std::vector<std::vector<size_t>> out;
  for (const auto& b : state_->buckets) out.push_back(b.members);
  return out;
}

}  // namespace lth::dist
