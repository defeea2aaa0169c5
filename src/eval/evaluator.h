#pragma once
// Accuracy, NLL and expected calibration error of a network on a dataset. Used for the
// validation passes during training and for the final test of every ticket.
//
// For test sets that cover a subset of the classes (ImageNet-R/-A), the logits are
// restricted to those columns before the softmax, as the reference does with its
// 200-class lists; labels are remapped to positions within the subset.
#include <cstdint>
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "models/network.h"
#include "models/precision.h"

namespace lth::eval {

struct EvalOptions {
  int64_t batch_size = 256;
  int num_workers = 2;
  int prefetch_factor = 2;
  torch::Device device = torch::kCPU;
  std::vector<int64_t> class_subset;  // empty = all classes
  // Run the network under the same autocast as training, as the reference evaluates in its
  // compute dtype; the head stays float32 either way.
  models::Precision precision = models::Precision::kFloat32;
  int ece_bins = 15;
  int rank = 0;  // this rank evaluates samples i with i % world_size == rank
  int world_size = 1;
  // Sums the per-rank partial sums across ranks (distributed evaluation); identity if unset.
  std::function<void(torch::Tensor&)> all_reduce_sum;
};

// count = 0 (an empty set, or every sample unreadable) is no result: accuracy, nll and ece
// are then 0 and mean nothing; callers report "no readable images" (null in JSON).
struct EvalResult {
  int64_t count = 0;
  int64_t skipped = 0;  // unreadable samples
  double accuracy = 0;  // fraction
  double nll = 0;       // mean negative log-likelihood
  double ece = 0;       // expected calibration error (equal-width confidence bins)
};

// Puts the network in eval mode for the pass and restores its previous mode.
EvalResult evaluate(models::Network& net, const data::DatasetPtr& dataset, const EvalOptions& options);

}  // namespace lth::eval
