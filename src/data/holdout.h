#pragma once
// Hold-out selection: N training images set aside, never trained on, on which the best
// weights of a phase are chosen, so the test sets are looked at once, at the end, and the
// numbers reported on them are not selected on themselves.
//
// Which images: class-balanced where the dataset knows its labels cheaply
// (Dataset::label): every class gives floor(N / C) images, and the remainder goes one each
// to classes drawn at random; within a class the images are a random draw. Everything is
// keyed by `seed` alone, so every rank, epoch and resumption sees the same split. A dataset
// that cannot tell labels without decoding gets a uniform random draw (logged).
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lth::data {

// The indices (sorted) of `count` samples of `dataset`, as described above. Throws
// UserError unless 0 < count < dataset.size().
std::vector<int64_t> choose_holdout(const Dataset& dataset, int64_t count, uint64_t seed);

// `count` of [0, size), drawn uniformly without replacement by a generator keyed by `seed`
// (all of them when count >= size); sorted.
std::vector<int64_t> uniform_sample(int64_t size, int64_t count, uint64_t seed);

// The sorted indices of [0, size) that are not in `sorted_excluded`.
std::vector<int64_t> complement(const std::vector<int64_t>& sorted_excluded, int64_t size);

// A view of some samples of another dataset, in the given order; sample i is base[indices[i]].
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<int64_t> indices, std::string name);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t num_classes() const override { return base_->num_classes(); }
  ImageShape shape() const override { return base_->shape(); }
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  // Forwarded, so that a view keeps its base's straight-into-the-batch decode.
  std::optional<int64_t> get_into(int64_t index, Rng& rng, uint8_t* slot) const override;
  std::vector<int64_t> class_subset() const override { return base_->class_subset(); }
  std::optional<int64_t> label(int64_t index) const override;
  std::string describe() const override;
  // The base dataset's index of sample `index`.
  int64_t base_index(int64_t index) const { return indices_.at(static_cast<size_t>(index)); }

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_;
  std::string name_;
};

struct HoldoutSplit {
  DatasetPtr train;    // the training images less the hold-out (train transform)
  DatasetPtr holdout;  // the hold-out images (eval transform)
  bool class_balanced = false;
};

// Splits the training set: `train` is the split with its train transform, `train_eval` the
// same images through the eval transform (the same object where there is no augmentation).
HoldoutSplit split_holdout(const DatasetPtr& train, const DatasetPtr& train_eval, int64_t count,
                           uint64_t seed);

}  // namespace lth::data
