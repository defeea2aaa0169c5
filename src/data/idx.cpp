#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/error.h"

namespace lth::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::filesystem::path find_file(const std::filesystem::path& root, const std::string& stem) {
  for (const auto& candidate : {root / (stem + ".gz"), root / stem}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw UserError((root / (stem + ".gz")).string() + ": no such file (nor " + stem + ")");
}


// gzread reads uncompressed files transparently, so one path serves both. Reads up to
// `size` bytes; fewer only at the end of the data. Inflation is driven by what the caller
// asks for, so a small gzip that would inflate to gigabytes is never inflated past it.
size_t read_up_to(gzFile file, uint8_t* out, size_t size, const std::string& name) {
  size_t done = 0;
  while (done < size) {
    const auto want = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 20));
    const int n = gzread(file, out + done, want);
    if (n < 0) {
      int errnum = 0;
      throw UserError(name + ": corrupt gzip data (" + gzerror(file, &errnum) + ")");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// The largest array read: MNIST-family files are tens of megabytes.
constexpr uint64_t kMaxIdxBytes = uint64_t{4} << 30;

}  // namespace

torch::Tensor read_idx_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  require(std::filesystem::exists(path, ec), name + ": no such file");
  require(std::filesystem::is_regular_file(path, ec), name + ": not a regular file");
  GzFile file(gzopen(path.c_str(), "rb"));
  require(file != nullptr, name + ": cannot open");
  // The header first: the promised size bounds everything read after it.
  uint8_t magic[4];
  require(read_up_to(file.get(), magic, 4, name) == 4, name + ": truncated IDX file (no header)");
  require(magic[0] == 0 && magic[1] == 0, name + ": not an IDX file (bad magic)");
  require(magic[2] == 0x08, name + ": unsupported IDX element type (only unsigned bytes)");
  const int rank = magic[3];
  require(rank >= 1 && rank <= 4, name + ": unsupported IDX rank " + std::to_string(rank));
  uint8_t dims[16];
  const size_t dim_bytes = 4 * static_cast<size_t>(rank);
  require(read_up_to(file.get(), dims, dim_bytes, name) == dim_bytes,
          name + ": truncated IDX header");
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    shape.push_back(big_endian_u32(&dims[4 * d]));
    require(!__builtin_mul_overflow(count, static_cast<uint64_t>(shape.back()), &count) &&
                count <= kMaxIdxBytes,
            name + ": IDX header promises more than " + std::to_string(kMaxIdxBytes) + " bytes");
  }
  // Data is read into a buffer that grows as it arrives, so a header promising more than
  // the file holds costs only what the file holds.
  std::vector<uint8_t> data;
  size_t have = 0;
  while (have < count) {
    data.resize(std::min<uint64_t>(count, std::max<uint64_t>(2 * have, 1 << 20)));
    const size_t n = read_up_to(file.get(), data.data() + have, data.size() - have, name);
    have += n;
    if (have < data.size()) break;  // end of data
  }
  uint8_t extra = 0;
  const bool trailing = have == count && read_up_to(file.get(), &extra, 1, name) == 1;
  const std::string found = trailing ? "more than " + std::to_string(count) : std::to_string(have);
  require(have == count && !trailing,
          name + ": IDX data has " + found + " bytes, header promises " + std::to_string(count) +
              (trailing ? "" : " (truncated?)"));
  auto tensor = torch::empty(shape, torch::kUInt8);
  if (count > 0) std::memcpy(tensor.data_ptr<uint8_t>(), data.data(), count);
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
