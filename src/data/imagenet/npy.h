#pragma once
// NumPy .npy files (format versions 1, 2 and 3; little-endian or byte-sized dtypes; C order),
// as the reference stores its pre-resized test arrays:
//   <data_root>/<Name>_x224/test_images.npy   uint8 [N, 224, 224, 3]
//   <data_root>/<Name>_x224/test_labels.npy   integer [N]
// Large arrays are memory-mapped, not read: the tensor returned views the file, read-only.
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lth::data::imagenet {

struct NpyHeader {
  std::string descr;  // e.g. "|u1", "<i8"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes before the array data
};

// Parses the header at the start of `bytes`. Throws UserError naming `what` on any problem.
NpyHeader parse_npy_header(const uint8_t* bytes, size_t size, const std::string& what);

// The array of a .npy file as a CPU tensor of the matching dtype (u1 i1 i2 i4 i8 f4 f8 b1;
// u2/u4 are widened to int32/int64). Throws UserError naming the file and the problem.
// The tensor must not be written to (it may view a read-only mapping of the file).
torch::Tensor read_npy(const std::filesystem::path& path);

// Writes a C-order little-endian .npy (version 1) of a contiguous CPU tensor. For tests and
// the synthetic generator.
void write_npy(const std::filesystem::path& path, const torch::Tensor& tensor);

// A test set stored as arrays: images uint8 [N, H, W, 3], labels integer [N]. Images whose
// size differs from `image_size` are resized (bicubic, as the eval transform) on get().
class NpyDataset : public Dataset {
 public:
  NpyDataset(std::string name, torch::Tensor images, torch::Tensor labels, int64_t num_classes,
             int64_t image_size, std::vector<int64_t> class_subset = {});
  // Reads <dir>/test_images.npy and <dir>/test_labels.npy. With `positions` (ImageNet-R/-A
  // arrays, as the reference stores them) the labels are positions in that list of classes:
  // label p becomes positions[p] and class_subset() is the whole list; a label outside
  // [0, positions.size()) is a UserError naming the file.
  static std::shared_ptr<NpyDataset> open(const std::string& name, const std::filesystem::path& dir,
                                          int64_t num_classes, int64_t image_size,
                                          const std::vector<int64_t>* positions = nullptr);

  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return num_classes_; }
  ImageShape shape() const override { return {image_size_, image_size_, 3}; }
  std::optional<Example> get(int64_t index, Rng& rng) const override;
  std::vector<int64_t> class_subset() const override { return class_subset_; }
  std::optional<int64_t> label(int64_t index) const override {
    return labels_.data_ptr<int64_t>()[index];
  }
  std::string describe() const override;

 private:
  std::string name_;
  torch::Tensor images_;
  torch::Tensor labels_;  // int64
  int64_t num_classes_;
  int64_t image_size_;
  std::vector<int64_t> class_subset_;
};

}  // namespace lth::data::imagenet
