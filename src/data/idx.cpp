#include "data/idx.h"

#include <zlib.h>

#include <memory>

#include "common/error.h"

namespace lth::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// gzread also reads uncompressed files transparently, so one path serves both.
std::vector<uint8_t> read_all(const std::filesystem::path& path) {
  require(std::filesystem::exists(path), path.string() + ": no such file");
  GzFile file(gzopen(path.c_str(), "rb"));
  require(file != nullptr, path.string() + ": cannot open");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int errnum = 0;
      throw UserError(path.string() + ": corrupt gzip data (" + gzerror(file.get(), &errnum) + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  return out;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::filesystem::path find_file(const std::filesystem::path& root, const std::string& stem) {
  for (const auto& candidate : {root / (stem + ".gz"), root / stem}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw UserError((root / (stem + ".gz")).string() + ": no such file (nor " + stem + ")");
}

}  // namespace

torch::Tensor read_idx_file(const std::filesystem::path& path) {
  const auto bytes = read_all(path);
  const std::string name = path.string();
  require(bytes.size() >= 4, name + ": truncated IDX file (no header)");
  require(bytes[0] == 0 && bytes[1] == 0, name + ": not an IDX file (bad magic)");
  require(bytes[2] == 0x08, name + ": unsupported IDX element type (only unsigned bytes)");
  const int rank = bytes[3];
  require(rank >= 1 && rank <= 4, name + ": unsupported IDX rank " + std::to_string(rank));
  require(bytes.size() >= 4 + 4 * static_cast<size_t>(rank), name + ": truncated IDX header");
  std::vector<int64_t> shape;
  size_t count = 1;
  for (int d = 0; d < rank; ++d) {
    shape.push_back(big_endian_u32(&bytes[4 + 4 * d]));
    count *= static_cast<size_t>(shape.back());
  }
  const size_t offset = 4 + 4 * static_cast<size_t>(rank);
  require(bytes.size() - offset == count,
          name + ": IDX data has " + std::to_string(bytes.size() - offset) +
              " bytes, header promises " + std::to_string(count) + " (truncated?)");
  auto tensor = torch::empty(shape, torch::kUInt8);
  std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data() + offset, count);
  return tensor;
}

IdxDataset::IdxDataset(const std::filesystem::path& root, Split split, int64_t num_classes)
    : num_classes_(num_classes) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const auto image_file = find_file(root, prefix + "-images-idx3-ubyte");
  const auto label_file = find_file(root, prefix + "-labels-idx1-ubyte");
  images_ = read_idx_file(image_file);
  labels_ = read_idx_file(label_file).to(torch::kInt64);
  require(images_.dim() == 3, image_file.string() + ": expected a 3-D image array");
  require(labels_.dim() == 1 && labels_.size(0) == images_.size(0),
          label_file.string() + ": label count does not match " + image_file.string());
  require(labels_.numel() == 0 || labels_.max().item<int64_t>() < num_classes,
          label_file.string() + ": label out of range for " + std::to_string(num_classes) + " classes");
  images_ = images_.unsqueeze(3).contiguous();
  description_ = image_file.string();
}

ImageShape IdxDataset::shape() const { return {images_.size(1), images_.size(2), 1}; }

std::optional<Example> IdxDataset::get(int64_t index, Rng&) const {
  return Example{images_[index], labels_[index].item<int64_t>()};
}

}  // namespace lth::data
