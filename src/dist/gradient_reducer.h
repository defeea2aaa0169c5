#pragma once
// Gradient all-reduce overlapped with the backward pass, as PyTorch's DistributedDataParallel
// does it: parameters are grouped into buckets of about 25 MB in reverse registration order
// (the order backward produces their gradients; the first bucket is 1 MB, so communication
// starts early); once every gradient of a bucket has been accumulated, the bucket is copied
// into its own flat buffer and its all-reduce starts while backward goes on. finish() waits
// for the buckets and writes the sums back into the gradients.
//
// Buckets start strictly in order (a ready bucket waits for the ones before it), so every
// rank issues the same collectives in the same order whatever order its hooks fire in. A
// parameter that gets no gradient in a step (unused) counts as zero, its bucket being
// reduced in finish(). Sums are the same element-wise sums as one all-reduce over everything,
// so results are bit-identical to it (Gloo adds the ranks' values in a fixed order).
//
// Hooks are autograd post-hooks on each parameter's gradient accumulator: they fire only
// while armed (the last micro-batch's backward), so accumulation over micro-batches is not
// reduced early. They are removed when the reducer is destroyed.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "dist/communicator.h"

namespace lth::dist {

struct ReducerOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;
  int64_t first_bucket_bytes = 1024 * 1024;
};

class GradientReducer {
 public:
  GradientReducer(std::vector<torch::Tensor> parameters, CommunicatorPtr comm, ReducerOptions options = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // The next backward pass produces this step's final gradients: reduce them as they come.
  void arm();
  // Starts the buckets still pending, waits for all, and writes the sums into .grad().
  void finish();

  // Parameter indices (into the constructor's list) of each bucket, in launch order.
  std::vector<std::vector<size_t>> buckets() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the hooks, which may outlive nothing but must not dangle
};

}  // namespace lth::dist
