#pragma once
// Parameters and their gradients as views into one flat buffer per (device, dtype), so that an
// elementwise update of every parameter is one kernel over the buffer instead of one per tensor
// (MaskedSgd's step: a handful of kernels for ResNet-50's 161 tensors instead of ~1,100).
//
// Construction ADOPTS the parameters: each one's values are copied into its group's buffer and
// the parameter is re-pointed there with set_data (the same tensor object, so the module and
// anyone holding it see the move; values, sizes and strides are kept). Each gradient becomes a
// view into a parallel buffer, and autograd accumulates into an existing .grad in place, so
// backward writes straight into the buffer. Code that replaces a parameter's data or its .grad
// (set_data, assigning a new tensor, resetting it) stays correct: sync() notices by pointer and
// copies the values back in, at the cost of one copy per displaced tensor.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace lth::train {

class FlatParameters {
 public:
  // `params` by name (names only label errors); each tensor must appear once.
  explicit FlatParameters(const std::vector<std::pair<std::string, torch::Tensor>>& params);

  struct Group {
    torch::Tensor params;         // 1-D: the members back to back, each 64-byte aligned
    torch::Tensor grads;          // same layout; current after sync()
    std::vector<size_t> members;  // indices into the constructor's list, ascending
  };
  const std::vector<Group>& groups() const { return groups_; }
  size_t size() const { return members_.size(); }
  size_t group_of(size_t i) const { return members_[i].group; }

  // A new 1-D tensor laid out like group g's buffers, filled with `value` (padding included).
  torch::Tensor new_buffer(size_t g, double value) const;
  // Member i's view (its parameter's sizes and strides) inside `flat`, a tensor from
  // new_buffer() or a Group's buffer.
  torch::Tensor view(const torch::Tensor& flat, size_t i) const;

  // Call before reading the buffers: puts back any parameter whose data was replaced, and
  // brings every gradient into the grads buffer (an undefined gradient counts as zero; one
  // that is not the buffer's view is copied in). The parameters' .grad are left as they are.
  void sync();
  // After sync(): makes every parameter's .grad the buffer's view again where it was not
  // (its values were copied in), so that what is written into the grads buffer is what every
  // .grad shows, and a later sync() copies nothing back over it.
  void attach_grads();
  // Zeroes every gradient: one fill per group, re-attaching the buffer's view as .grad
  // wherever a gradient was undefined or replaced.
  void zero_grads();

 private:
  struct Member {
    std::string name;
    torch::Tensor param;  // the caller's tensor (same object; its data now lives in the buffer)
    size_t group;
    int64_t offset;  // in elements, within the group's buffers
    std::vector<int64_t> sizes, strides;
    torch::Tensor param_view, grad_view;
  };
  void restore_param(Member& m);
  bool grad_attached(const Member& m) const;

  std::vector<Member> members_;
  std::vector<Group> groups_;
};

}  // namespace lth::train
