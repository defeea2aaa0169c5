#pragma once
// A dataset is a read-only, random-access list of labelled images, already transformed
// to the size the model takes. The loader (loader.h) turns one into batches.
//
// Contract for implementations:
//  - get() may be called concurrently from several loader threads;
//  - every random choice in get() (crop, flip) draws only from the `rng` it is given,
//    which the loader keys by (seed, epoch, index): results never depend on threads;
//  - an unreadable sample (truncated JPEG, ...) returns std::nullopt after logging, unless
//    the dataset was opened strict, in which case it throws UserError naming the file.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"

namespace lth::data {

struct ImageShape {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
};

struct Example {
  torch::Tensor image;  // uint8, [H, W, C], contiguous
  int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Number of classes of the label space (1000 for every ImageNet test set, even R/A).
  virtual int64_t num_classes() const = 0;
  virtual ImageShape shape() const = 0;
  virtual std::optional<Example> get(int64_t index, Rng& rng) const = 0;
  // get(), written straight into `slot` (shape(), uint8, contiguous: a batch's row) instead
  // of a tensor of its own; returns the label, or nullopt where get() would. Same contract
  // and same bytes as get(). The default copies get()'s image; a dataset that decodes
  // (ImageNet folders) overrides it to save a tensor allocation and a copy per sample.
  virtual std::optional<int64_t> get_into(int64_t index, Rng& rng, uint8_t* slot) const {
    auto example = get(index, rng);
    if (!example) return std::nullopt;
    const ImageShape s = shape();
    torch::from_blob(slot, {s.height, s.width, s.channels}, torch::kUInt8).copy_(example->image);
    return example->label;
  }
  // Classes present, for test sets that cover a subset (ImageNet-R/-A). Empty = all.
  virtual std::vector<int64_t> class_subset() const { return {}; }
  // The label of sample `index` without reading its image, where the dataset knows it
  // cheaply (a class folder, a label array); nullopt where only get() can tell. Used to
  // draw class-balanced hold-out sets (data/holdout.h).
  virtual std::optional<int64_t> label(int64_t /*index*/) const { return std::nullopt; }
  virtual std::string describe() const = 0;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

enum class Split { Train, Test };

}  // namespace lth::data
