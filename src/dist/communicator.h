#pragma once
// What the trainer needs from data parallelism: sums across ranks, a broadcast and a
// barrier. The single-process Communicator does nothing; the c10d implementation (Gloo on
// CPU, NCCL on CUDA builds) lives beside it and is made from torchrun-style env vars.
#include <torch/types.h>

#include <memory>
#include <vector>

namespace lth::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // In-place element-wise sum over ranks of each tensor (same shapes on every rank).
  virtual void all_reduce_sum(std::vector<torch::Tensor>& /*tensors*/) {}
  // In-place: every rank receives root's values.
  virtual void broadcast(std::vector<torch::Tensor>& /*tensors*/, int /*root*/) {}
  virtual void barrier() {}
  bool is_root() const { return rank() == 0; }
};

using CommunicatorPtr = std::shared_ptr<Communicator>;

}  // namespace lth::dist
