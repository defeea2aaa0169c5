#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "data/idx.h"

namespace lth::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lth_test_idx_" + name + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A 2-image 2x2 IDX pair in raw (uncompressed) form.
void write_tiny_idx(const fs::path& dir) {
  write_bytes(dir / "train-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2,
                                                1, 2, 3, 4, 5, 6, 7, 8});
  write_bytes(dir / "train-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 7, 9});
}

TEST(Idx, ReadsRawFiles) {
  auto dir = temp_dir("raw");
  write_tiny_idx(dir);
  IdxDataset ds(dir, Split::Train);
  ASSERT_EQ(ds.size(), 2);
  Rng rng(0);
  auto second = ds.get(1, rng);
  EXPECT_EQ(second->label, 9);
  EXPECT_EQ(second->image.sizes(), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(second->image.sum().item<int64_t>(), 5 + 6 + 7 + 8);
  fs::remove_all(dir);
}

TEST(Idx, TruncatedFileNamesTheFile) {
  auto dir = temp_dir("trunc");
  write_tiny_idx(dir);
  write_bytes(dir / "train-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1});
  try {
    IdxDataset ds(dir, Split::Train);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train-images-idx3-ubyte"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(Idx, MissingFolderIsAClearError) {
  EXPECT_THROW(IdxDataset("/nonexistent/lth", Split::Test), UserError);
}

TEST(Idx, ReadsDebiansGzippedFashionMnist) {
  const fs::path root = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(root)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  IdxDataset test(root, Split::Test);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.shape().height, 28);
  Rng rng(0);
  EXPECT_EQ(test.get(0, rng)->label, 9);  // the first Fashion-MNIST test item is an ankle boot
}

}  // namespace
}  // namespace lth::data
