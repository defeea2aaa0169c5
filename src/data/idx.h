#pragma once
// MNIST-family datasets in the IDX format (gzipped or raw), e.g. Debian's
// dataset-fashion-mnist in /usr/share/datasets/fashion-mnist/. Held in memory (47 MB for
// 60k 28x28 images); no augmentation, as in the lottery-ticket papers' MNIST setups.
#include <filesystem>

#include "data/dataset.h"

namespace lth::data {

class IdxDataset : public Dataset {
 public:
  // Reads "<root>/{train,t10k}-images-idx3-ubyte[.gz]" and the matching labels file.
  IdxDataset(const std::filesystem::path& root, Split split, int64_t num_classes = 10);

  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return num_classes_; }
  ImageShape shape() const override;
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  std::optional<int64_t> label(int64_t index) const override {
    return labels_.data_ptr<int64_t>()[index];
  }
  std::string describe() const override { return description_; }

 private:
  torch::Tensor images_;  // uint8 [N, H, W, 1]
  torch::Tensor labels_;  // int64 [N]
  int64_t num_classes_;
  std::string description_;
};

// Reads one IDX file (gzip detected by magic bytes) into a uint8 tensor of its shape.
// Throws UserError naming the file on a missing, truncated or malformed file.
torch::Tensor read_idx_file(const std::filesystem::path& path);

}  // namespace lth::data
