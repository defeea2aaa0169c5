#pragma once
// What the trainer needs from data parallelism: sums across ranks, a broadcast and a
// barrier. The single-process Communicator does nothing; the c10d implementation (Gloo on
// CPU, NCCL on CUDA builds) lives beside it and is made from torchrun-style env vars.
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace lth::dist {

// A collective in flight (Communicator::start_all_reduce_sum). wait() returns once its result
// is in the tensor for the caller's purposes: on CPU/Gloo when it has arrived; on CUDA/NCCL
// once the current stream is ordered after it, without blocking the host. Destroying a
// handle that was not waited on waits (Gloo, NCCL) or abandons a collective that had not
// started (shared memory, which runs it at wait()); either way the communicator must not be
// used for further collectives after an error dropped a handle.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

// A collective that already completed (single process, or one run synchronously).
class CompletedCollective final : public PendingCollective {
 public:
  void wait() override {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // In-place element-wise sum over ranks of each tensor (same shapes on every rank).
  virtual void all_reduce_sum(std::vector<torch::Tensor>& /*tensors*/) {}
  // Starts an in-place sum over ranks of one contiguous tensor and returns at once, so that
  // communication overlaps computation (the gradient reducer, dist/gradient_reducer.h). Every
  // rank must start the same collectives in the same order. The default runs it now.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor flat) {
    std::vector<torch::Tensor> one{std::move(flat)};
    all_reduce_sum(one);
    return std::make_unique<CompletedCollective>();
  }
  // In-place: every rank receives root's values.
  virtual void broadcast(std::vector<torch::Tensor>& /*tensors*/, int /*root*/) {}
  virtual void barrier() {}
  // What carries the sums, for logs: "one process", "shared memory", "gloo" or "nccl".
  virtual std::string transport() const { return "one process"; }
  bool is_root() const { return rank() == 0; }
};

using CommunicatorPtr = std::shared_ptr<Communicator>;

}  // namespace lth::dist
