#include "train/flat_parameters.h"

#include <set>

#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include "common/error.h"

namespace lth::train {
namespace {

// Members start on 64-byte boundaries (a cache line, an AVX-512 vector): a parameter then
// begins where it would as a tensor of its own, for whatever kernel reads it next (oneDNN
// reorders, cuDNN). The padding stays zero in every buffer and costs < 0.1 % on ResNet-50.
constexpr int64_t kAlignBytes = 64;

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// The parameter's own strides when it is dense (e.g. channels-last), so that every view of it
// (data, gradient, momentum, mask) is laid out alike; row-major otherwise.
std::vector<int64_t> layout_of(const torch::Tensor& p) {
  if (p.is_non_overlapping_and_dense()) return p.strides().vec();
  std::vector<int64_t> strides(p.dim(), 1);
  for (int64_t d = p.dim() - 2; d >= 0; --d) strides[d] = strides[d + 1] * std::max<int64_t>(p.size(d + 1), 1);
  return strides;
}

}  // namespace

FlatParameters::FlatParameters(const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  at::NoGradGuard no_grad;
  std::set<const void*> seen;
  std::vector<int64_t> lengths;  // per group, in elements
  for (const auto& [name, p] : params) {
    require(p.defined(), "optimiser: parameter '" + name + "' is undefined");
    require(seen.insert(p.unsafeGetTensorImpl()).second,
            "optimiser: parameter '" + name + "' is listed twice");
    size_t g = 0;
    while (g < groups_.size() && !(groups_[g].params.device() == p.device() &&
                                   groups_[g].params.scalar_type() == p.scalar_type()))
      ++g;
    if (g == groups_.size()) {
      // A 0-element placeholder records the group's device and dtype until the real buffer.
      groups_.push_back(Group{torch::empty({0}, p.options().requires_grad(false)), {}, {}});
      lengths.push_back(0);
    }
    const int64_t align = std::max<int64_t>(1, kAlignBytes / static_cast<int64_t>(p.element_size()));
    Member m{name, p, g, lengths[g], p.sizes().vec(), layout_of(p), {}, {}};
    lengths[g] += round_up(p.numel(), align);
    groups_[g].members.push_back(members_.size());
    members_.push_back(std::move(m));
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].params = torch::zeros({lengths[g]}, groups_[g].params.options());
    groups_[g].grads = torch::zeros({lengths[g]}, groups_[g].params.options());
  }
  for (size_t i = 0; i < members_.size(); ++i) {
    auto& m = members_[i];
    m.param_view = view(groups_[m.group].params, i);
    m.grad_view = view(groups_[m.group].grads, i);
    if (m.param.grad().defined()) m.grad_view.copy_(m.param.grad());
    restore_param(m);
    m.param.mutable_grad() = m.grad_view;
  }
}

torch::Tensor FlatParameters::new_buffer(size_t g, double value) const {
  const auto& like = groups_.at(g).params;
  return torch::full({like.numel()}, value, like.options());
}

torch::Tensor FlatParameters::view(const torch::Tensor& flat, size_t i) const {
  const auto& m = members_.at(i);
  return flat.as_strided(m.sizes, m.strides, flat.storage_offset() + m.offset);
}

void FlatParameters::restore_param(Member& m) {
  require(m.param.device() == m.param_view.device() &&
              m.param.scalar_type() == m.param_view.scalar_type() && m.param.sizes() == m.param_view.sizes(),
          "optimiser: parameter '" + m.name + "' changed device, dtype or shape after the optimiser was built");
  m.param_view.copy_(m.param.detach());
  m.param.set_data(m.param_view);
}

bool FlatParameters::grad_attached(const Member& m) const {
  const auto& g = m.param.grad();
  return g.defined() && g.unsafeGetTensorImpl() == m.grad_view.unsafeGetTensorImpl() &&
         g.data_ptr() == m.grad_view.data_ptr() && g.strides() == m.grad_view.strides() &&
         g.sizes() == m.grad_view.sizes();
}

void FlatParameters::sync() {
  at::NoGradGuard no_grad;
  for (auto& m : members_) {
    const auto& p = m.param;
    if (p.data_ptr() != m.param_view.data_ptr() || p.sizes() != m.param_view.sizes() ||
        p.strides() != m.param_view.strides())
      restore_param(m);
    if (grad_attached(m)) continue;
    const auto& g = p.grad();
    if (!g.defined()) {
      m.grad_view.zero_();  // an unused parameter: zero gradient
    } else {
      require(g.sizes() == m.grad_view.sizes(), "optimiser: gradient of '" + m.name + "' has the wrong shape");
      m.grad_view.copy_(g);
    }
  }
}

void FlatParameters::attach_grads() {
  at::NoGradGuard no_grad;
  for (auto& m : members_)
    if (!grad_attached(m)) m.param.mutable_grad() = m.grad_view;
}

void FlatParameters::zero_grads() {
  at::NoGradGuard no_grad;
  for (auto& m : members_)
    if (!grad_attached(m)) m.param.mutable_grad() = m.grad_view;
  for (auto& g : groups_) g.grads.zero_();
}

}  // namespace lth::train
